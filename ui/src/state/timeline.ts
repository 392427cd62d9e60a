/**
 * The marks of the replay bar's timeline strip: when incidents opened and when operators
 * committed actions, on the scenario clock, so a trainer scrubbing back sees where things
 * happened.
 */
import type { ActionDto, IncidentEntryDto } from "../ipc/backend";

export type TimelineMark = {
  readonly atMs: number;
  readonly kind: "incident" | "action";
  /** For the tooltip; feed text, shown only as text. */
  readonly label: string;
};

/** Incident openings and actions (those with a scenario time), in time order. */
export function timelineMarks(incidents: Iterable<IncidentEntryDto>, actions: readonly ActionDto[]): TimelineMark[] {
  const marks: TimelineMark[] = [];
  for (const e of incidents) marks.push({ atMs: e.openedMs, kind: "incident", label: `Opened: ${e.title}` });
  for (const a of actions) {
    if (a.scenarioMs !== null) marks.push({ atMs: a.scenarioMs, kind: "action", label: `${a.summary} (${a.status})` });
  }
  return marks.sort((a, b) => a.atMs - b.atMs || a.kind.localeCompare(b.kind));
}
