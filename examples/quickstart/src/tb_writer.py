"""A minimal TensorBoard scalar writer (the event-file record format), standard library only.

torch.utils.tensorboard.SummaryWriter needs the tensorboard package; this sample should run on a
worker whose Python has nothing extra. Hearth follows any *tfevents* file under the logdir.
"""
import os
import socket
import struct
import time


def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def _masked_crc(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    c ^= 0xFFFFFFFF
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def _field(number, payload):
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


def _event(step, wall_time, scalars=None, file_version=None):
    msg = b"\x09" + struct.pack("<d", wall_time) + b"\x10" + _varint(step)
    if file_version is not None:
        msg += _field(3, file_version.encode())
    if scalars:
        values = b"".join(_field(1, _field(1, tag.encode()) + b"\x15" + struct.pack("<f", value)) for tag, value in scalars.items())
        msg += _field(5, values)
    return msg


class SummaryWriter:
    """`add_scalar(tag, value, step)` as in torch.utils.tensorboard, into `log_dir`."""

    def __init__(self, log_dir="runs"):
        os.makedirs(log_dir, exist_ok=True)
        name = "events.out.tfevents.%d.%s.%d" % (int(time.time()), socket.gethostname(), os.getpid())
        self._f = open(os.path.join(log_dir, name), "wb")
        self._write(_event(0, time.time(), file_version="brain.Event:2"))

    def _write(self, data):
        header = struct.pack("<Q", len(data))
        self._f.write(header + struct.pack("<I", _masked_crc(header)) + data + struct.pack("<I", _masked_crc(data)))
        self._f.flush()

    def add_scalar(self, tag, value, step):
        self._write(_event(step, time.time(), {tag: float(value)}))

    def close(self):
        self._f.close()
