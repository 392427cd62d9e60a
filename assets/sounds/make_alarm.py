#!/usr/bin/env python3
"""Writes alarm.wav beside this script: the incident queue's alarm for a new high-severity
incident. Standard library only and deterministic (no randomness), so rerunning it gives the
same bytes: three short two-tone chirps (880 Hz then 1175 Hz), 0.9 s, mono, 22.05 kHz, 16 bit.
Each tone has a 10 ms fade in and out so it does not click."""
import math
import os
import struct
import wave

RATE = 22050
VOLUME = 0.45


def tone(freq, seconds):
    n = int(RATE * seconds)
    fade = int(RATE * 0.01)
    out = []
    for i in range(n):
        env = min(1.0, i / fade, (n - 1 - i) / fade)
        # A little of the third harmonic makes it cut through fan noise in a control room.
        s = math.sin(2 * math.pi * freq * i / RATE) + 0.25 * math.sin(2 * math.pi * 3 * freq * i / RATE)
        out.append(VOLUME * env * s / 1.25)
    return out


def silence(seconds):
    return [0.0] * int(RATE * seconds)


def main():
    samples = []
    for _ in range(3):
        samples += tone(880, 0.11) + tone(1175, 0.11) + silence(0.08)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "alarm.wav")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(b"".join(struct.pack("<h", int(round(s * 32767))) for s in samples))
    print(f"wrote {path}: {len(samples) / RATE:.2f} s")


if __name__ == "__main__":
    main()
