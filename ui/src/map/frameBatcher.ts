/**
 * Coalesces many requests into at most one call of `flush` per animation frame. Diffs can
 * arrive far more often than the screen refreshes (a replay at "max" speed); `setData` is
 * expensive, so it runs once per frame with whatever the latest state is.
 */
export type FrameBatcher = { schedule(): void; cancel(): void };

export function createFrameBatcher(
  flush: () => void,
  requestFrame: (cb: () => void) => number = (cb) => requestAnimationFrame(cb),
  cancelFrame: (h: number) => void = (h) => cancelAnimationFrame(h),
): FrameBatcher {
  let handle: number | null = null;
  return {
    schedule() {
      if (handle !== null) return;
      handle = requestFrame(() => {
        handle = null;
        flush();
      });
    },
    cancel() {
      if (handle !== null) cancelFrame(handle);
      handle = null;
    },
  };
}
