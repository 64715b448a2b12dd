"""Train the simple RNN of clipping.py without and with clipnorm; print the losses, plot them."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import matplotlib                                   # noqa: E402
matplotlib.use("Agg")
import matplotlib.pyplot as plt                     # noqa: E402

from clipping import baseline, train                # noqa: E402

out = sys.argv[1] if len(sys.argv) > 1 else "runs/gradient-clipping"
os.makedirs(out, exist_ok=True)
base = baseline()
print(f"always answering 0: MSE {base:.2f}")
_, err, _ = train(clipnorm=None)
print(f"without clipnorm: {err}")
_, err_skip, _ = train(clipnorm=None, on_nonfinite="skip")
print(f"without clipnorm, on_nonfinite='skip': {err_skip}")
losses, _, _ = train(clipnorm=5.0)
print("with clipnorm=5:  " + " ".join(f"{v:.2f}" for v in losses))
plt.figure(figsize=(6, 3.5))
plt.plot(range(1, len(losses) + 1), losses, marker="o", label="clipnorm=5")
plt.axhline(base, color="gray", ls="--", label="always 0")
plt.scatter([err.epoch], [base * 1.5], marker="x", color="red", s=80,
            label=f"no clipping: NaN at epoch {err.epoch}, batch {err.batch}")
plt.yscale("log")
plt.xlabel("epoch")
plt.ylabel("training MSE")
plt.title("Simple RNN (ReLU), recurrent weights x1.5, SGD 0.03")
plt.legend()
plt.tight_layout()
plt.savefig(os.path.join(out, "clipping.png"), dpi=120)
print(f"plot: {os.path.join(out, 'clipping.png')}")
