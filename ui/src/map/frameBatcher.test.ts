import { describe, expect, it } from "vitest";
import { createFrameBatcher } from "./frameBatcher";

function fakeFrames() {
  const queue = new Map<number, () => void>();
  let next = 1;
  return {
    request: (cb: () => void) => {
      queue.set(next, cb);
      return next++;
    },
    cancel: (h: number) => void queue.delete(h),
    run() {
      const cbs = [...queue.values()];
      queue.clear();
      for (const cb of cbs) cb();
    },
    get pending() {
      return queue.size;
    },
  };
}

describe("frame batcher", () => {
  it("flushes once per frame however often it is scheduled", () => {
    const frames = fakeFrames();
    let flushes = 0;
    const b = createFrameBatcher(() => flushes++, frames.request, frames.cancel);
    for (let i = 0; i < 100; i++) b.schedule();
    expect(frames.pending).toBe(1);
    frames.run();
    expect(flushes).toBe(1);
    frames.run();
    expect(flushes).toBe(1);
    b.schedule();
    frames.run();
    expect(flushes).toBe(2);
  });

  it("can be cancelled", () => {
    const frames = fakeFrames();
    let flushes = 0;
    const b = createFrameBatcher(() => flushes++, frames.request, frames.cancel);
    b.schedule();
    b.cancel();
    frames.run();
    expect(flushes).toBe(0);
  });
});
