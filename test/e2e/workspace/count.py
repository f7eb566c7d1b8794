"""Prints numbered lines for a while, with one TensorBoard scalar per line, so a test can check
that the run panel shows every line exactly once, in order, after a reload or a reopen mid-run.
COUNT_LINES and LINE_SECONDS in the environment make it longer or shorter.
"""
import os
import time

from train import EventWriter

# not LINES: a job gets LINES=40, the terminal height, as in a terminal
LINES = int(os.environ.get("COUNT_LINES", "300"))
LINE_SECONDS = float(os.environ.get("LINE_SECONDS", "0.05"))


def main():
    print("count: %d lines" % LINES, flush=True)
    writer = EventWriter("runs")
    for i in range(1, LINES + 1):
        print("count line %03d of %d" % (i, LINES), flush=True)
        writer.add_scalars(i, {"count/line": float(i)})
        time.sleep(LINE_SECONDS)
    writer.close()
    print("count done", flush=True)


if __name__ == "__main__":
    main()
