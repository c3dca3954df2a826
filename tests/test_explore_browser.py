"""``tinycnn explore``'s page in a real browser: headless Chromium driven by Selenium.

Needs Debian's ``chromium`` and ``chromium-driver`` and ``pip install selenium``; skips, saying
which is missing, where they are not installed, except when TINYCNN_REQUIRE_BROWSER=1 (CI sets
it, after installing them): then a missing piece fails the test.

The model: with the real MNIST files at hand (../shared/data, or TINYCNN_TEST_DATA), a
LeNet-5 trained here on 3,000 of its digits for one epoch (seconds), and the page must name a
test digit's true class; otherwise the LeNet-5 of test_explore_server.py trained on grey
strokes, and the page must give the class ``tinycnn predict`` gives for the same PNG.

A screenshot of the page is saved in TINYCNN_TEST_ARTEFACTS (a folder; default: the test's tmp_path).
"""

import importlib.util
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinycnn.cli import main
from tinycnn.env import flag
from tinycnn.explore import Explorer

from _datafiles import REAL_DATA
from _explore_run import ServerThread, train_stroke_run

REQUIRED = flag("TINYCNN_REQUIRE_BROWSER", False, "1: a missing browser fails the browser test")
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
               "t10k-labels-idx1-ubyte")


def _missing() -> str | None:
    """What is missing for the browser test, or None."""
    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed (pip install selenium)"
    if _chromium() is None:
        return "Chromium is not installed (apt-get install chromium)"
    if shutil.which("chromedriver") is None:
        return "chromedriver is not installed (apt-get install chromium-driver)"
    return None


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def _has_real_mnist() -> bool:
    folder = REAL_DATA / "mnist"
    return all((folder / name).exists() or (folder / (name + ".gz")).exists() for name in MNIST_FILES)


@pytest.fixture(scope="module")
def browser():
    missing = _missing()
    if missing:
        if REQUIRED:
            pytest.fail(f"TINYCNN_REQUIRE_BROWSER=1, but {missing}")
        pytest.skip(f"the browser test needs Chromium, chromedriver and selenium: {missing}")
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = _chromium()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1400,1100", "--force-device-scale-factor=1"):
        options.add_argument(argument)
    # The driver named explicitly: Selenium must not try to download one (CI is offline).
    driver = webdriver.Chrome(service=webdriver.ChromeService(shutil.which("chromedriver")), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(run folder, a test digit's PNG, the class the page must show for it, how that class is known)."""
    tmp = tmp_path_factory.mktemp("explore-browser")
    if _has_real_mnist():
        out = tmp / "mnist-lenet5"
        assert main(["train", "--dataset", "mnist", "--data-dir", str(REAL_DATA), "--model", "lenet5", "--train-size",
                     "3000", "--val-split", "300", "--epochs", "1", "--batch-size", "32", "--out", str(out),
                     "--quiet"]) == 0
        from tinycnn.data import MNIST

        test_set = MNIST(root=REAL_DATA, train=False)
        digit = tmp / "digit.png"
        Image.fromarray(test_set.images[0, 0]).save(digit)  # a 7
        return out, digit, str(test_set.labels[0]), "its true class"
    out = train_stroke_run(tmp)
    digit = out.parent / "strokes" / "test" / "cross" / "0.png"
    explorer = Explorer(out)
    try:  # what `tinycnn predict` says, through the same reader and model
        from tinycnn.predict_files import Item, classify_files
        from tinycnn.runner import load_checkpoint

        item = classify_files(explorer.view.model, load_checkpoint(out)["meta"], [Item(digit)])[0]
    finally:
        explorer.close()
    return out, digit, item.top[0][0], "tinycnn predict's class"


@pytest.fixture(scope="module")
def page(browser, run):
    explorer = Explorer(run[0])
    server = ServerThread(explorer)
    browser.get(server.url)
    yield browser, explorer
    server.close()
    explorer.close()


def idle(driver) -> bool:
    """Whether every answer the page asked for has come."""
    return driver.find_element("tag name", "body").get_attribute("data-busy") == "0"


def seen_input(driver) -> np.ndarray:
    """The picture the page shows as "the input at the model's size", as pixels."""
    import base64
    import io

    src = driver.find_element("id", "seen-input").get_attribute("src") or ""
    if not src.startswith("data:image/png;base64,"):
        return np.zeros(0)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))))


def wait(driver, condition, seconds=60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds, poll_frequency=0.1).until(lambda d: condition(d))


# For each layer row: each map picture's (natural width, natural height, spread of its pixel values).
MAP_PIXELS = """
return [...document.querySelectorAll('.layer')].map((row) =>
  [...row.querySelectorAll('img.fmap, img.vector')].map((img) => {
    if (!img.complete || img.naturalWidth === 0 || img.getBoundingClientRect().width < 20) return null;
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const pen = canvas.getContext('2d');
    pen.drawImage(img, 0, 0);
    const data = pen.getImageData(0, 0, canvas.width, canvas.height).data;
    let low = 765, high = 0;
    for (let i = 0; i < data.length; i += 4) {
      const sum = data[i] + data[i + 1] + data[i + 2];
      low = Math.min(low, sum);
      high = Math.max(high, sum);
    }
    return [img.naturalWidth, img.naturalHeight, high - low];
  }));
"""


def check_feature_maps(driver, explorer):
    """Every layer shows its maps: the right count and size, rendered, and not all blank."""
    rows = wait(driver, lambda d: (lambda r: r if r and all(all(x is not None for x in row) and row for row in r)
                                   else False)(d.execute_script(MAP_PIXELS)))
    layers = explorer.view.layers
    assert len(rows) == len(layers)
    for layer, row in zip(layers, rows):
        shape = layer["output_shape"]
        if len(shape) == 3:
            assert len(row) == min(shape[0], 32), layer["name"]
            assert {(w, h) for w, h, _ in row} == {(shape[2], shape[1])}, layer["name"]
            assert max(spread for _, _, spread in row) > 0, f"{layer['name']}: every map is blank"
        else:
            assert len(row) == 1 and row[0][:2] == [shape[0], 1], layer["name"]


def test_draw_upload_and_a_bad_upload(page, run, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    driver, explorer = page
    _, digit, expected, known_as = run
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".layer")) == len(explorer.view.layers))
    assert driver.find_element(By.ID, "message").is_displayed() is False

    # 1. Draw a stroke (a "1"-like line with a hook): the page asks while drawing and shows an answer.
    canvas = driver.find_element(By.ID, "canvas")
    stroke = ActionChains(driver).move_to_element_with_offset(canvas, -30, -90).click_and_hold()
    for _ in range(9):
        stroke = stroke.move_by_offset(3, 20)
    stroke.release().perform()
    wait(driver, lambda d: d.find_element(By.ID, "top-class").text not in ("", "-") and idle(d))
    drawn = seen_input(driver)
    assert drawn.shape == (28, 28) and drawn.max() > 100  # the stroke, centred in 28x28
    check_feature_maps(driver, explorer)
    assert driver.find_element(By.ID, "gradcam").get_attribute("src").startswith("data:image/png")

    # 2. Upload a digit as a PNG file: the page names the class expected of it.
    driver.find_element(By.ID, "tab-upload").click()
    driver.find_element(By.ID, "file-input").send_keys(str(digit))
    pixels = np.asarray(Image.open(digit))
    wait(driver, lambda d: idle(d) and np.array_equal(seen_input(d), pixels))  # the digit's answer is shown
    shown = driver.find_element(By.ID, "top-class").text
    assert shown == expected, f"the page says {shown}, {known_as} is {expected}"
    check_feature_maps(driver, explorer)
    natural = driver.execute_script("const i = document.getElementById('gradcam'); return [i.complete, i.naturalWidth];")
    assert natural == [True, 224]
    bars = driver.find_elements(By.CSS_SELECTOR, "#bars .bar-row")
    assert len(bars) == min(10, len(explorer.meta["classes"])) and expected in bars[0].text

    artefacts = Path(os.environ.get("TINYCNN_TEST_ARTEFACTS") or tmp_path)
    artefacts.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(artefacts / "explore.png"))
    print(f"screenshot: {artefacts / 'explore.png'}")

    # 3. A file that is not an image: a message the student can see, and the page still works.
    bad = tmp_path / "not-a-digit.png"
    bad.write_text("this is text, not a picture")
    driver.find_element(By.ID, "file-input").send_keys(str(bad))
    message = wait(driver, lambda d: (lambda m: m if m.is_displayed() and m.text else False)(
        d.find_element(By.ID, "message")))
    assert "cannot read this image" in message.text and "not an image file" in message.text
    assert driver.find_element(By.ID, "top-class").text == expected  # the last good answer stays

    # 4. The test set's most confident mistakes: clicking one shows the model's (wrong) answer for it.
    driver.find_element(By.ID, "tab-test").click()
    driver.find_element(By.ID, "test-mistakes").click()
    wait(driver, lambda d: "test images" in d.find_element(By.ID, "test-note").text)
    items = driver.find_elements(By.CSS_SELECTOR, "#test-images .test-item")
    _, labels, probabilities = explorer.test_data()
    assert len(items) == min(16, int(np.sum(probabilities.argmax(axis=1) != labels)))
    if items:
        label, prediction = items[0].text.split(" -> ")
        items[0].click()
        wait(driver, lambda d: idle(d) and d.find_element(By.ID, "top-class").text == prediction)
        assert not driver.find_element(By.ID, "message").is_displayed()  # a good answer clears the message
