"""Print the torchvision twins' sizes and costs: ``python -m tinycnn.models [name ...]``.

For each model: parameters at 1000 classes (ImageNet) and at 10, and forward multiply-adds
(conv + linear, :func:`~tinycnn.models.count_flops`) per image at 224x224 with the ImageNet
stem and at 32x32 with ``small_input=True``. The models' docstrings quote these lines.
Building VGG-16 and running it at 224 takes a while on a CPU (about 15 GMACs).
"""

import sys

from . import TAKES_SMALL_INPUT, count_flops, count_parameters, get_model


def main(names) -> None:
    print(f"{'model':16s} {'params@1000':>14s} {'params@10':>14s} {'MACs@224':>16s} {'MACs@32 small':>16s}")
    for name in names:
        big = get_model(name, num_classes=1000)
        row = [count_parameters(big), count_parameters(get_model(name, num_classes=10))]
        row.append(count_flops(big, (3, 224, 224)))
        del big
        row.append(count_flops(get_model(name, num_classes=10, small_input=True), (3, 32, 32)))
        print(f"{name:16s} " + " ".join(f"{n:>14,}" if i < 2 else f"{n:>16,}" for i, n in enumerate(row)), flush=True)
        if name == "googlenet":
            without = [count_parameters(get_model(name, num_classes=c, aux_logits=False)) for c in (1000, 10)]
            print(f"{'  aux_logits=False':16s} {without[0]:>14,} {without[1]:>14,}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or list(TAKES_SMALL_INPUT))
