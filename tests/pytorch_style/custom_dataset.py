"""A user's own map-style Dataset, the way PyTorch courses teach data loading, run on tinycnn.

Only the import block differs from PyTorch (swap each ``tinycnn`` for ``torch``). It covers:
a Dataset class whose ``__getitem__`` returns NumPy arrays and numbers (and augments at
random, which is why it must be called per sample), ``random_split`` with a seeded
``Generator``, ``drop_last``, ``len(loader.dataset)``, a ``collate_fn`` for dict samples,
two heads in an ``nn.ModuleDict`` (a classifier with BCEWithLogitsLoss and a regressor
with MSELoss), and the optimizers RMSprop and Adagrad.

    python tests/pytorch_style/custom_dataset.py
"""

import numpy as np

import tinycnn as torch
import tinycnn.nn as nn
import tinycnn.nn.functional as F
import tinycnn.optim as optim
from tinycnn.utils.data import DataLoader, Dataset, random_split


class Blobs(Dataset):
    """n 1x16x16 images, each a bright square of random size on noise.

    A sample is (image float32 (1, 16, 16), is_large 0./1., side length): the classifier
    learns whether the square is large, the regressor its side.
    """

    def __init__(self, n, seed, flip=False):
        self.rng = np.random.default_rng(seed)
        self.sides = self.rng.integers(2, 12, size=n)
        self.flip = flip

    def __len__(self):
        return len(self.sides)

    def __getitem__(self, idx):
        side = int(self.sides[idx])
        image = 0.1 * self.rng.standard_normal((1, 16, 16)).astype(np.float32)
        image[:, :side, :side] += 1.0
        if self.flip and self.rng.random() < 0.5:         # random augmentation, per sample
            image = image[:, :, ::-1].copy()
        return image, float(side >= 7), side / 10.0


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout2d(0.1),
            nn.Conv2d(8, 16, 3, padding=1), nn.Tanh(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.heads = nn.ModuleDict({"large": nn.Linear(16, 1), "side": nn.Linear(16, 1)})
        self.extra = nn.Identity()

    def forward(self, x):
        h = self.extra(self.features(x))
        return self.heads["large"](h).squeeze(1), self.heads["side"](h).squeeze(1)


def as_dict(samples):
    """collate_fn: a list of (image, is_large, side) -> a dict batch."""
    images = torch.stack([torch.from_numpy(image) for image, _, _ in samples])
    return {"image": images,
            "large": torch.tensor([large for _, large, _ in samples]),
            "side": torch.tensor([side for _, _, side in samples])}


def main(n=160, batch_size=16, epochs=2, optimizer_name="RMSprop"):
    torch.manual_seed(0)
    full = Blobs(n, seed=0, flip=True)
    train_set, val_set = random_split(full, [0.75, 0.25], generator=torch.Generator().manual_seed(42))
    train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, drop_last=True)
    val_loader = DataLoader(val_set, batch_size=batch_size, collate_fn=as_dict)
    assert len(train_loader.dataset) + len(val_loader.dataset) == len(full)

    model = Model()
    if optimizer_name == "RMSprop":
        optimizer = optim.RMSprop(model.parameters(), lr=0.005)
    else:
        optimizer = optim.Adagrad(model.parameters(), lr=0.05)
    bce, mse = nn.BCEWithLogitsLoss(), nn.MSELoss()

    losses = []
    for epoch in range(epochs):
        model.train()
        for images, large, side in train_loader:              # default collation: stacked tensors
            optimizer.zero_grad()
            large_score, side_pred = model(images)
            loss = bce(large_score, large) + mse(side_pred, side)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())

        model.eval()
        correct, abs_error = 0, 0.0
        with torch.no_grad():
            for batch in val_loader:                            # collate_fn: dict batches
                large_score, side_pred = model(batch["image"])
                probs = torch.sigmoid(large_score)
                correct += ((probs > 0.5).float() == batch["large"]).sum().item()
                abs_error += F.l1_loss(side_pred, batch["side"], reduction="sum").item()
        print(f"epoch {epoch + 1}: train loss {np.mean(losses[-len(train_loader):]):.3f}, "
              f"val accuracy {correct}/{len(val_loader.dataset)}, side error {abs_error / len(val_loader.dataset):.2f}")
    return {"losses": losses, "correct": correct, "steps_per_epoch": len(train_loader)}


if __name__ == "__main__":
    main()
