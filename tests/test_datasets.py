"""MNIST, Fashion-MNIST and CIFAR-10 readers: synthetic files in every accepted format,
broken files (truncated, wrong magic, wrong checksum), and the real sets when present."""

from __future__ import annotations

import gzip
import hashlib

import numpy as np
import pytest

from _datafiles import (
    BATCHES, REAL_DATA, idx_bytes, make_cifar_batches, make_idx_set, sha256, write, write_cifar_bins,
    write_cifar_binary_tar, write_cifar_python_tar,
)
from tinycnn.data import (
    CIFAR10, MNIST, ChecksumError, CorruptFileError, DatasetNotFoundError, FashionMNIST, ImageDataset,
)
from tinycnn.data import cifar as cifar_module
from tinycnn.data.idx import parse_idx


# --------------------------------------------------------------------------- IDX / MNIST
@pytest.fixture
def mnist_dir(tmp_path, monkeypatch):
    checksums, arrays = make_idx_set(tmp_path / "mnist", gz=True)
    monkeypatch.setattr(MNIST, "content_sha256", checksums)
    return tmp_path, arrays


@pytest.mark.parametrize("train", [True, False])
def test_mnist_reads_gzipped_idx(mnist_dir, train):
    root, arrays = mnist_dir
    ds = MNIST(root=root, train=train)
    images, labels = arrays["train" if train else "test"]
    assert ds.images.shape == (len(images), 1, 28, 28) and ds.images.dtype == np.uint8
    assert ds.labels.dtype == np.int64
    np.testing.assert_array_equal(ds.images[:, 0], images)
    np.testing.assert_array_equal(ds.labels, labels)
    assert ds.classes == tuple("0123456789") and len(ds) == len(labels)
    image, label = ds[3]
    assert image.shape == (1, 28, 28) and label == labels[3]


def test_mnist_reads_plain_idx_and_root_pointing_at_the_set_folder(tmp_path, monkeypatch):
    checksums, arrays = make_idx_set(tmp_path / "mnist", gz=False)
    monkeypatch.setattr(MNIST, "content_sha256", checksums)
    ds = MNIST(root=tmp_path / "mnist", train=False)
    np.testing.assert_array_equal(ds.labels, arrays["test"][1])


def test_root_via_environment_variable(mnist_dir, monkeypatch):
    root, arrays = mnist_dir
    monkeypatch.setenv("TINYCNN_DATA", str(root))
    assert len(MNIST(train=True)) == len(arrays["train"][1])


def test_fashion_mnist_uses_its_own_folder_and_classes(tmp_path, monkeypatch):
    checksums, _ = make_idx_set(tmp_path / "fashion-mnist")
    monkeypatch.setattr(FashionMNIST, "content_sha256", checksums)
    ds = FashionMNIST(root=tmp_path)
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot"
    assert str(ds.root).endswith("fashion-mnist")


def test_missing_files_error_says_where_what_and_how(tmp_path):
    with pytest.raises(DatasetNotFoundError) as error:
        MNIST(root=tmp_path)
    message = str(error.value)
    assert str(tmp_path / "mnist") in message
    assert "train-images-idx3-ubyte.gz" in message and "download=True" in message and "--download" in message
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        FashionMNIST(root=tmp_path)


def test_wrong_checksum_is_refused(mnist_dir, monkeypatch):
    root, _ = mnist_dir
    wrong = dict(MNIST.content_sha256, **{"t10k-labels-idx1-ubyte": "0" * 64})
    monkeypatch.setattr(MNIST, "content_sha256", wrong)
    with pytest.raises(ChecksumError, match="t10k-labels-idx1-ubyte"):
        MNIST(root=root, train=False)
    assert len(MNIST(root=root, train=False, verify=False)) == 6   # verify=False reads it anyway


def test_truncated_gzip_is_refused(mnist_dir):
    root, _ = mnist_dir
    path = root / "mnist" / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(CorruptFileError, match="truncated|damaged"):
        MNIST(root=root, train=False)


def test_truncated_idx_is_refused(mnist_dir):
    root, arrays = mnist_dir
    content = idx_bytes(arrays["test"][0])[:-100]
    write(root / "mnist" / "t10k-images-idx3-ubyte.gz", content, gz=True)
    with pytest.raises(CorruptFileError, match="truncated"):
        MNIST(root=root, train=False, verify=False)


@pytest.mark.parametrize("header, match", [
    (b"\x08\x03\x00\x00", "magic bytes 00 00"),
    (b"\x00\x00\x0d\x03", "element type 0x0d"),
    (b"\x00\x00\x08\x01", "magic number 2049"),
])
def test_bad_idx_header_is_refused(header, match):
    data = header + (1).to_bytes(4, "big") * 3 + bytes(1)
    with pytest.raises(CorruptFileError, match=match):
        parse_idx(data, ndim=3)


def test_idx_trailing_bytes_are_refused():
    with pytest.raises(CorruptFileError, match="trailing"):
        parse_idx(idx_bytes(np.zeros((2, 3), np.uint8)) + b"x", ndim=2)


def test_images_and_labels_swapped_is_refused(mnist_dir):
    root, _ = mnist_dir
    folder = root / "mnist"
    images, labels = folder / "t10k-images-idx3-ubyte.gz", folder / "t10k-labels-idx1-ubyte.gz"
    images_bytes = images.read_bytes()
    images.write_bytes(labels.read_bytes())
    labels.write_bytes(images_bytes)
    with pytest.raises(CorruptFileError, match="swapped"):
        MNIST(root=root, train=False, verify=False)


# --------------------------------------------------------------------------- CIFAR-10
@pytest.fixture
def cifar_batches(monkeypatch):
    batches = make_cifar_batches()
    monkeypatch.setattr(CIFAR10, "content_sha256", {name: sha256(b[0]) for name, b in batches.items()})
    return batches


def _check_cifar(ds, batches, train):
    names = BATCHES[:5] if train else BATCHES[5:]
    np.testing.assert_array_equal(ds.images, np.concatenate([batches[n][1] for n in names]))
    np.testing.assert_array_equal(ds.labels, np.concatenate([batches[n][2] for n in names]))
    assert ds.images.dtype == np.uint8 and ds.labels.dtype == np.int64
    assert ds.images.shape[1:] == (3, 32, 32) and ds.classes[0] == "airplane"


@pytest.mark.parametrize("layout", ["bin", "bin.gz", "extracted", "binary-tar", "python-tar"])
@pytest.mark.parametrize("train", [True, False])
def test_cifar_reads_every_layout(tmp_path, cifar_batches, layout, train):
    folder = tmp_path / "cifar10"
    if layout == "bin":
        write_cifar_bins(folder, cifar_batches)
    elif layout == "bin.gz":
        write_cifar_bins(folder, cifar_batches, gz=True)
    elif layout == "extracted":
        write_cifar_bins(folder / "cifar-10-batches-bin", cifar_batches)
    elif layout == "binary-tar":
        write_cifar_binary_tar(folder / "cifar-10-binary.tar.gz", cifar_batches)
    else:
        write_cifar_python_tar(folder / "cifar-10-python.tar.gz", cifar_batches)
    _check_cifar(CIFAR10(root=tmp_path, train=train), cifar_batches, train)


def test_cifar_class_names_from_meta_file(tmp_path, cifar_batches):
    write_cifar_bins(tmp_path / "cifar10", cifar_batches)
    (tmp_path / "cifar10" / "batches.meta.txt").write_text("\n".join(f"c{i}" for i in range(10)) + "\n")
    assert CIFAR10(root=tmp_path, train=False).classes[3] == "c3"


def test_cifar_truncated_batch_is_refused(tmp_path, cifar_batches):
    write_cifar_bins(tmp_path / "cifar10", cifar_batches)
    path = tmp_path / "cifar10" / "test_batch.bin"
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(CorruptFileError, match="3073-byte"):
        CIFAR10(root=tmp_path, train=False, verify=False)


def test_cifar_wrong_checksum_is_refused(tmp_path, cifar_batches):
    batches = dict(cifar_batches)
    data, images, labels = batches["test_batch"]
    batches["test_batch"] = (data[:-1] + bytes([data[-1] ^ 1]), images, labels)   # one bit flipped
    write_cifar_bins(tmp_path / "cifar10", batches, gz=True)
    with pytest.raises(ChecksumError, match="test_batch"):
        CIFAR10(root=tmp_path, train=False)


def test_cifar_bad_label_byte_is_refused(tmp_path, cifar_batches):
    write_cifar_bins(tmp_path / "cifar10", cifar_batches)
    path = tmp_path / "cifar10" / "test_batch.bin"
    path.write_bytes(b"\x63" + path.read_bytes()[1:])
    with pytest.raises(CorruptFileError, match="label byte 99"):
        CIFAR10(root=tmp_path, train=False, verify=False)


def test_cifar_truncated_tar_is_refused(tmp_path, cifar_batches):
    path = write_cifar_binary_tar(tmp_path / "cifar10" / "cifar-10-binary.tar.gz", cifar_batches)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CorruptFileError):
        CIFAR10(root=tmp_path, train=True)


def test_cifar_python_pickle_cannot_run_code(tmp_path):
    import pickle
    import tarfile
    import io

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "cifar10" / "cifar-10-python.tar.gz"
    path.parent.mkdir()
    with tarfile.open(path, "w:gz") as tar:
        data = pickle.dumps({b"data": Evil(), b"labels": [0]})
        info = tarfile.TarInfo("cifar-10-batches-py/test_batch")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(CorruptFileError, match="refusing to load builtins.print"):
        CIFAR10(root=tmp_path, train=False)


def test_cifar_missing_error(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="cifar-10-binary.tar.gz") as error:
        CIFAR10(root=tmp_path)
    assert str(tmp_path / "cifar10") in str(error.value)


def test_image_dataset_checks_its_arrays():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        ImageDataset(np.zeros((2, 28, 28), np.uint8), np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="labels must be"):
        ImageDataset(np.zeros((2, 1, 28, 28), np.uint8), np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="0..1"):
        ImageDataset(np.zeros((2, 1, 4, 4), np.uint8), np.array([0, 5]), classes=("a", "b"))


# --------------------------------------------------------------------------- the real sets
needs_real_data = pytest.mark.skipif(not REAL_DATA.is_dir(), reason=f"real data sets not found at {REAL_DATA}")


@needs_real_data
@pytest.mark.parametrize("cls, first_train, first_test", [
    (MNIST, [5, 0, 4, 1, 9, 2, 1, 3, 1, 4], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]),
    (FashionMNIST, [9, 0, 0, 3, 0, 2, 7, 2, 5, 5], [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]),
])
def test_real_idx_sets(cls, first_train, first_test):
    train, test = cls(root=REAL_DATA, train=True), cls(root=REAL_DATA, train=False)   # verify=True: checksums
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert train.labels[:10].tolist() == first_train and test.labels[:10].tolist() == first_test
    assert train.class_counts().sum() == 60000 and train.class_counts().min() > 5000
    mean = train.images.mean() / 255
    assert abs(mean - cls.MEAN[0]) < 1e-3


@needs_real_data
def test_real_mnist_class_counts():
    counts = MNIST(root=REAL_DATA, train=False).class_counts()
    assert counts.tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@needs_real_data
def test_real_gzip_files_match_readme_checksums():
    # The README's gz checksums (content checksums are checked by every load above).
    path = REAL_DATA / "mnist" / "t10k-labels-idx1-ubyte.gz"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"
    assert hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest() == MNIST.content_sha256["t10k-labels-idx1-ubyte"]


@needs_real_data
def test_real_cifar10():
    test = CIFAR10(root=REAL_DATA, train=False)
    assert test.images.shape == (10000, 3, 32, 32)
    assert test.labels[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
    assert test.class_counts().tolist() == [1000] * 10
    assert test.images[0, 0, 0, :3].tolist() == [158, 159, 165]
    assert test.classes == cifar_module.CIFAR10.CLASSES


@needs_real_data
@pytest.mark.slow
def test_real_cifar10_train():
    train = CIFAR10(root=REAL_DATA, train=True)
    assert train.images.shape == (50000, 3, 32, 32)
    assert train.labels[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
    assert train.class_counts().tolist() == [5000] * 10
    assert train.images[0, 0, 0, :10].tolist() == [59, 43, 50, 68, 98, 119, 139, 145, 149, 149]
    assert train.images[0].reshape(-1)[-3:].tolist() == [140, 84, 72]
    np.testing.assert_allclose(train.images.mean(axis=(0, 2, 3)) / 255, cifar_module.CIFAR10_MEAN, atol=1e-4)
