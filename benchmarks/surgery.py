"""Time one ablate() call (copy, removal, shape repair, validation) per model, on CPU, as a
multiple of one plain forward pass of the same model.

Models: the Titanic MLP of the Maggy thesis (remove [4, 5]: one Linear repaired), a small CNN
(remove the second conv: BatchNorm and Linear repaired), and a ResNet-18 (torchvision's
layout, 4 stages of 2 BasicBlocks, 64..512 channels, input (3, 224, 224)) with one input
channel ablated and block layer3.1 removed (the stem conv is repaired). The forward pass is
the base model's on one sample (batch 1), in eval mode under torch.no_grad(). Each repeat
times one forward and one ablate() back to back; the JSON line gives the medians (ms) and
``*_ratio``, the median of the per-repeat ratios ablate/forward.

    python3 benchmarks/surgery.py [--repeats 7] [--threads 1] [--size 224]
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from maggy.ablation.surgery import ablate  # noqa: E402


def titanic() -> nn.Module:
    return nn.Sequential(
        nn.Linear(6, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(),
        nn.Linear(32, 2), nn.ReLU(), nn.Linear(2, 1), nn.Sigmoid())


def cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 16 * 16, 10))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.downsample = nn.Identity()
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.downsample(x))


class ResNet18(nn.Module):
    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths = [64, 128, 256, 512]
        for i, width in enumerate(widths):
            cin = widths[i - 1] if i else 64
            stage = nn.Sequential(BasicBlock(cin, width, 1 if i == 0 else 2),
                                  BasicBlock(width, width, 1))
            self.add_module(f"layer{i + 1}", stage)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def elapsed_ms(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def paired(surgery, model: nn.Module, input_shape: tuple, repeats: int) -> dict:
    """Median ms of ablate() and of one forward pass, and the median per-repeat ratio."""
    model.eval()
    x = torch.randn(1, *input_shape)

    def forward() -> None:
        with torch.no_grad():
            model(x)

    surgery(), forward()  # warm-up: first-call allocations and lazy init are not measured
    pairs = [(elapsed_ms(surgery), elapsed_ms(forward)) for _ in range(repeats)]
    return {"ms": round(statistics.median(s for s, _ in pairs), 2),
            "forward_ms": round(statistics.median(f for _, f in pairs), 2),
            "ratio": round(statistics.median(s / f for s, f in pairs), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--size", type=int, default=224, help="ResNet input height and width")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    mlp, conv, resnet = titanic(), cnn(), ResNet18()
    size = args.size
    runs = {
        "mlp": paired(lambda: ablate(mlp, [4, 5], input_shape=(6,), verbose=False),
                      mlp, (6,), args.repeats),
        "cnn": paired(lambda: ablate(conv, 3, input_shape=(3, 32, 32), verbose=False),
                      conv, (3, 32, 32), args.repeats),
        "resnet18": paired(lambda: ablate(resnet, "layer3.1", input_shape=(2, size, size),
                                          verbose=False), resnet, (3, size, size), args.repeats),
    }
    result = {"benchmark": "surgery"}
    for name, run in runs.items():
        result.update({f"{name}_ms": run["ms"], f"{name}_forward_ms": run["forward_ms"],
                       f"{name}_ratio": run["ratio"]})
    result.update({
        "input": f"mlp (6,), cnn (3, 32, 32), resnet18 (2, {size}, {size}); forward: batch 1 "
                 f"of the base model's input (resnet18 (3, {size}, {size}))",
        "ablation": "mlp [4, 5]; cnn 3; resnet18 'layer3.1' and one input channel",
        "threads": args.threads,
        "repeats": args.repeats,
        "torch": torch.__version__,
    })
    print(json.dumps(result))


if __name__ == "__main__":
    main()
