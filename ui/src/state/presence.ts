/**
 * A site's presence as operators read it: who at the other workstations has each incident
 * open ("Bo has it open", "Aino, Bo have it open"). The queue, the incident detail and the
 * wall display say it the same way.
 */
import type { PresenceDto } from "../ipc/backend";

/** Per incident id, who has it open, in words; incidents nobody has open are absent. */
export function lookingAt(presence: readonly PresenceDto[]): Map<string, string> {
  const by = new Map<string, string[]>();
  for (const p of presence) {
    if (p.incident === null || p.operator === null) continue;
    by.set(p.incident, [...(by.get(p.incident) ?? []), p.operator]);
  }
  return new Map(
    [...by].map(([id, names]) => [id, `${names.join(", ")} ${names.length === 1 ? "has" : "have"} it open`]),
  );
}
