"""Fits y = 3x - 1 with a tiny model and shows what Hearth does with a training run.

- a tqdm-style progress bar redrawn with '\\r' (sized from $COLUMNS, which Hearth sets to 120)
- TensorBoard scalars under runs/: train_loss, val_loss and the learning rate (try the log scale)
- the weights in outputs/model.pt, which Pull Weights brings back

Uses PyTorch when the worker's Python has it, plain Python otherwise. STEPS and STEP_SECONDS in
the environment make the run longer or shorter.
"""
import os
import random
import shutil
import sys
import time

from tb_writer import SummaryWriter

STEPS = int(os.environ.get("STEPS", "120"))
STEP_SECONDS = float(os.environ.get("STEP_SECONDS", "0.05"))


def bar(step, total, loss, started):
    """One line like tqdm's: as wide as the terminal says it is."""
    width = shutil.get_terminal_size((80, 24)).columns
    rate = step / max(time.time() - started, 1e-9)
    left = (total - step) / rate if rate > 0 else 0
    text_l = "train %3d%%|" % (100 * step // total)
    text_r = "| %d/%d [%02d:%02d<%02d:%02d, %.1fit/s, train_loss=%.4f]" % (
        step, total, *divmod(int(time.time() - started), 60), *divmod(int(left), 60), rate, loss)
    room = max(10, width - len(text_l) - len(text_r) - 1)
    done = room * step // total
    return text_l + "#" * done + " " * (room - done) + text_r


def main():
    try:
        import torch
    except ImportError:
        torch = None
    random.seed(0)
    writer = SummaryWriter("runs")
    device = "cuda" if torch is not None and torch.cuda.is_available() else "cpu"
    print("\x1b[1;32mquickstart\x1b[0m: %d steps on %s (%s)" % (STEPS, device, "torch " + torch.__version__ if torch else "plain Python"), flush=True)
    xs = [random.uniform(-1, 1) for _ in range(256)]
    ys = [3 * x - 1 + random.gauss(0, 0.1) for x in xs]
    w, b = 0.0, 0.0
    lr0 = 0.5
    started = time.time()
    for step in range(1, STEPS + 1):
        lr = lr0 * 0.97 ** step
        batch = random.sample(range(len(xs)), 32)
        gw = sum(2 * (w * xs[i] + b - ys[i]) * xs[i] for i in batch) / len(batch)
        gb = sum(2 * (w * xs[i] + b - ys[i]) for i in batch) / len(batch)
        w, b = w - lr * gw, b - lr * gb
        train_loss = sum((w * xs[i] + b - ys[i]) ** 2 for i in batch) / len(batch)
        val_loss = sum((w * x + b - y) ** 2 for x, y in zip(xs[:64], ys[:64])) / 64
        writer.add_scalar("loss/train_loss", train_loss, step)
        writer.add_scalar("loss/val_loss", val_loss, step)
        writer.add_scalar("lr", lr, step)
        sys.stdout.write("\r" + bar(step, STEPS, train_loss, started))
        sys.stdout.flush()
        if step % 40 == 0:
            sys.stdout.write("\nstep %d: train_loss %.4f val_loss %.4f w=%.3f b=%.3f\n" % (step, train_loss, val_loss, w, b))
        time.sleep(STEP_SECONDS)
    writer.close()
    os.makedirs("outputs", exist_ok=True)
    if torch is not None:
        torch.save({"w": torch.tensor(w), "b": torch.tensor(b)}, "outputs/model.pt")
    else:
        with open("outputs/model.pt", "w") as f:
            f.write("w=%r b=%r\n" % (w, b))
    print("\nsaved outputs/model.pt (w=%.3f, b=%.3f)" % (w, b), flush=True)


if __name__ == "__main__":
    main()
