"""The CIFAR-10 "training a classifier" tutorial's steps, run on tinycnn.

Only the import block differs from PyTorch (swap each ``tinycnn`` for ``torch``). The
images are synthetic 3x32x32 tensors in a TensorDataset (class k has colour channel k % 3
brightened), so no download is needed.

    python tests/pytorch_style/cifar_tutorial.py
"""

import tinycnn as torch
import tinycnn.nn as nn
import tinycnn.nn.functional as F
import tinycnn.optim as optim
from tinycnn.utils.data import DataLoader, TensorDataset

classes = ("plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def synthetic_cifar(n, seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=g)
    images = torch.randn(n, 3, 32, 32, generator=g) * 0.5
    tint = F.one_hot(labels % 3, 3).float().view(n, 3, 1, 1)      # one bright channel per class group
    return TensorDataset(images + tint, labels)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))     # (N, 6, 14, 14)
        x = self.pool(F.relu(self.conv2(x)))     # (N, 16, 5, 5)
        x = torch.flatten(x, 1)                  # (N, 400)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)                       # scores, for CrossEntropyLoss


def main(path="./cifar_net.pth", epochs=2, train_size=256, test_size=64, batch_size=8):
    torch.manual_seed(0)
    trainloader = DataLoader(synthetic_cifar(train_size, seed=0), batch_size=batch_size, shuffle=True, num_workers=2)
    testloader = DataLoader(synthetic_cifar(test_size, seed=1), batch_size=batch_size, shuffle=False, num_workers=2)

    dataiter = iter(trainloader)
    images, labels = next(dataiter)
    print(images.shape, " ".join(f"{classes[labels[j]]:5s}" for j in range(batch_size)))

    net = Net()
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

    epoch_losses = []
    for epoch in range(epochs):
        running_loss, total_loss = 0.0, 0.0
        for i, data in enumerate(trainloader, 0):
            inputs, labels = data
            optimizer.zero_grad()
            outputs = net(inputs)
            loss = criterion(outputs, labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
            total_loss += loss.item()
            if i % 10 == 9:
                print(f"[{epoch + 1}, {i + 1:3d}] loss: {running_loss / 10:.3f}")
                running_loss = 0.0
        epoch_losses.append(total_loss / len(trainloader))
    print("Finished Training")

    torch.save(net.state_dict(), path)
    net = Net()
    net.load_state_dict(torch.load(path, weights_only=True))

    correct, total = 0, 0
    with torch.no_grad():
        for data in testloader:
            images, labels = data
            outputs = net(images)
            _, predicted = torch.max(outputs.data, 1)
            total += labels.size(0)
            correct += (predicted == labels).sum().item()
    print(f"Accuracy of the network on the {total} test images: {100 * correct // total} %")

    correct_pred = {classname: 0 for classname in classes}
    total_pred = {classname: 0 for classname in classes}
    with torch.no_grad():
        for images, labels in testloader:
            outputs = net(images)
            _, predictions = outputs.max(1)
            for label, prediction in zip(labels, predictions):
                if label == prediction:
                    correct_pred[classes[label]] += 1
                total_pred[classes[label]] += 1
    for classname, correct_count in correct_pred.items():
        if total_pred[classname]:
            print(f"Accuracy for class: {classname:5s} is {100 * float(correct_count) / total_pred[classname]:.1f} %")
    return {"epoch_losses": epoch_losses, "correct": correct, "total": total,
            "per_class_correct": sum(correct_pred.values())}


if __name__ == "__main__":
    main()
