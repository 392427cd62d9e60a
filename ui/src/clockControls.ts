/**
 * Play, pause, speed and seek as the shell windows (the operator's and the trainer's) drive
 * them: each calls the backend, patches the clock at once so the bar answers before the next
 * diff, and reports a failure in words.
 */
import type { Backend } from "./ipc/backend";
import { patchClock, type DataState } from "./state/data";

export type ClockControls = {
  togglePlay(): Promise<void>;
  changeSpeed(speed: number | null): Promise<void>;
  seek(ms: number): Promise<void>;
};

export function clockControls(
  backend: Backend,
  get: () => DataState,
  set: (d: DataState) => void,
  fail: (e: unknown, what: string) => void,
): ClockControls {
  return {
    async togglePlay() {
      const clock = get().clock;
      if (!clock) return;
      try {
        if (clock.playing) {
          await backend.pause();
          set(patchClock(get(), { playing: false }));
        } else {
          // At the end of the tape, play means "from the start again".
          if (clock.nowMs >= clock.endMs) await backend.seek(clock.startMs);
          await backend.play();
          set(patchClock(get(), { playing: true }));
        }
      } catch (e) {
        fail(e, clock.playing ? "Pause failed" : "Play failed");
      }
    },
    async changeSpeed(speed) {
      try {
        await backend.setSpeed(speed);
        set(patchClock(get(), { speed }));
      } catch (e) {
        fail(e, "Speed change failed");
      }
    },
    async seek(ms) {
      try {
        await backend.seek(ms);
      } catch (e) {
        fail(e, "Seek failed");
      }
    },
  };
}
