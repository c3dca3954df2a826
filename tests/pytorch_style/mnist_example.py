"""A first PyTorch training script (the shape of pytorch/examples' mnist/main.py), run on tinycnn.

Only the import block below differs from PyTorch: swap each ``tinycnn`` for ``torch``
and this runs on PyTorch as it stands (tests/test_pytorch_style.py does that when PyTorch
is installed). The data is a map-style Dataset of synthetic 28x28 "digits" (noise whose
brightness encodes the label), so no download is needed.

    python tests/pytorch_style/mnist_example.py --epochs 2
"""

import argparse

import tinycnn as torch
import tinycnn.nn as nn
import tinycnn.nn.functional as F
import tinycnn.optim as optim
from tinycnn.utils.data import DataLoader, Dataset
from tinycnn.optim.lr_scheduler import StepLR


class SyntheticDigits(Dataset):
    """n grey 28x28 images; an image of class k is noise plus a brightness of k / 10."""

    def __init__(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        self.targets = torch.randint(0, 10, (n,), generator=g)
        noise = torch.randn(n, 1, 28, 28, generator=g)
        self.data = 0.3 * noise + self.targets.float().view(n, 1, 1, 1) / 10

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, index):
        return self.data[index], self.targets[index]


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))                   # (N, 32, 26, 26)
        x = F.relu(self.conv2(x))                   # (N, 64, 24, 24)
        x = F.max_pool2d(x, 2)                      # (N, 64, 12, 12)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)                     # (N, 9216)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        return F.log_softmax(self.fc2(x), dim=1)    # log-probabilities, for nll_loss


def train(args, model, device, train_loader, optimizer, epoch):
    model.train()
    losses = []
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if batch_idx % args.log_interval == 0:
            seen = batch_idx * len(data)
            print(f"epoch {epoch} [{seen}/{len(train_loader.dataset)} "
                  f"({100.0 * batch_idx / len(train_loader):.0f}%)]  loss {loss.item():.4f}")
    return losses


def test(model, device, test_loader):
    model.eval()
    test_loss, correct = 0.0, 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction="sum").item()
            pred = output.argmax(dim=1, keepdim=True)               # (N, 1) class indices
            correct += pred.eq(target.view_as(pred)).sum().item()
    test_loss /= len(test_loader.dataset)
    accuracy = 100.0 * correct / len(test_loader.dataset)
    print(f"test: average loss {test_loss:.4f}, accuracy {correct}/{len(test_loader.dataset)} ({accuracy:.0f}%)")
    return test_loss, accuracy


def main(argv=None):
    parser = argparse.ArgumentParser(description="a small CNN on synthetic digits")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--test-batch-size", type=int, default=64)
    parser.add_argument("--train-size", type=int, default=192)
    parser.add_argument("--test-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1.0)
    parser.add_argument("--gamma", type=float, default=0.7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--log-interval", type=int, default=2)
    parser.add_argument("--save-model", default=None, help="file to save the weights to")
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    train_kwargs = {"batch_size": args.batch_size, "shuffle": True}
    test_kwargs = {"batch_size": args.test_batch_size}
    if device.type == "cuda":
        train_kwargs.update({"num_workers": 1, "pin_memory": True})

    train_loader = DataLoader(SyntheticDigits(args.train_size, seed=0), **train_kwargs)
    test_loader = DataLoader(SyntheticDigits(args.test_size, seed=1), **test_kwargs)

    model = Net().to(device)
    optimizer = optim.Adadelta(model.parameters(), lr=args.lr)
    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
    losses, lrs = [], []
    for epoch in range(1, args.epochs + 1):
        losses += train(args, model, device, train_loader, optimizer, epoch)
        test_loss, accuracy = test(model, device, test_loader)
        lrs.append(optimizer.param_groups[0]["lr"])
        scheduler.step()

    if args.save_model:
        torch.save(model.state_dict(), args.save_model)
        reloaded = Net().to(device)
        reloaded.load_state_dict(torch.load(args.save_model, weights_only=True))
        assert test(reloaded, device, test_loader) == (test_loss, accuracy)
    return {"losses": losses, "test_loss": test_loss, "accuracy": accuracy, "lrs": lrs}


if __name__ == "__main__":
    main()
