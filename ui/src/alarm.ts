/**
 * The alarm a new high-severity incident sounds (`assets/sounds/alarm.wav`, see
 * `assets/README.md`). A failure to play (no audio device, autoplay policy) is logged, never
 * shown as an error: the flashing queue entry still tells the operator.
 */
import alarmUrl from "@assets/sounds/alarm.wav?url";

export type Alarm = { play(): void };

export function createAlarm(): Alarm {
  let audio: HTMLAudioElement | null = null;
  return {
    play() {
      try {
        audio ??= new Audio(alarmUrl);
        audio.currentTime = 0;
        void audio.play().catch((e: unknown) => console.warn("alarm sound:", e));
      } catch (e) {
        console.warn("alarm sound:", e);
      }
    },
  };
}
