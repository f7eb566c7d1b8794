"""A \r progress bar wider than the run panel, names with underscores, then a traceback."""
import sys
import time


def fail_here():
    raise ValueError("train_loss went NaN")


for i in range(0, 101, 5):
    sys.stdout.write("\repoch_1 %3d%%|%s%s| %d/100 train_loss=0.%03d" % (i, "#" * (2 * i), " " * (200 - 2 * i), i, i))
    sys.stdout.flush()
    time.sleep(0.05)
print(flush=True)
print("train_loss ____ val_loss", flush=True)
fail_here()
