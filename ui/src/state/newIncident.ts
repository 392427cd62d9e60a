/**
 * The "New incident" form as data: what the operator filled in for a phone call or a radio
 * report, where it is placed, and the request it makes (or why it cannot be made yet). The
 * engine checks it again against the rules; this only spares the operator a round trip.
 */
import type { IncidentEntryDto, IncidentTypeDto, Layer, NewIncidentDto, Severity } from "../ipc/backend";

/** The longest description the engine takes, in characters. */
export const MAX_DESCRIPTION = 2000;

/** The severities a call may have: `normal` is no problem, so it would open nothing. */
export const CALL_SEVERITIES: readonly Severity[] = ["minor", "moderate", "severe", "extreme"];

export type NewIncidentForm = {
  readonly incidentType: string;
  readonly layer: Layer;
  readonly severity: Severity;
  readonly description: string;
  /** Where, as lon and lat: the map's centre when the form opened, until a click places it. */
  readonly at: readonly [number, number];
  /** The operator placed it by clicking the map. */
  readonly placed: boolean;
};

/** A fresh form for the rules' types, placed at the map's centre for now. */
export function newForm(types: readonly IncidentTypeDto[], centre: readonly [number, number]): NewIncidentForm {
  return {
    incidentType: types[0]?.id ?? "",
    // Phone calls and radio reports are reports from people: the alerts layer, unless chosen.
    layer: "alerts",
    severity: "moderate",
    description: "",
    at: [centre[0], centre[1]],
    placed: false,
  };
}

/** The form placed where the operator clicked. */
export function placeAt(form: NewIncidentForm, lon: number, lat: number): NewIncidentForm {
  return { ...form, at: [lon, lat], placed: true };
}

/** What the engine is asked for, or the reason the form is not complete. */
export function callRequest(form: NewIncidentForm): NewIncidentDto | string {
  if (form.incidentType === "") return "Pick the type of incident.";
  const description = form.description.trim();
  if (description === "") return "Describe what was reported.";
  if (description.length > MAX_DESCRIPTION) return `The description is longer than ${MAX_DESCRIPTION} characters.`;
  if (!form.placed) return "Click the map where it is.";
  return {
    incidentType: form.incidentType,
    layer: form.layer,
    severity: form.severity,
    description,
    lon: form.at[0],
    lat: form.at[1],
  };
}

/** The place as the form shows it: lat, lon with five decimals (about a metre). */
export function placeText(form: NewIncidentForm): string {
  return `${form.at[1].toFixed(5)}, ${form.at[0].toFixed(5)}`;
}

/** The queue's entry of the incident a call opened, once it is there. */
export function incidentOfCall(entries: Iterable<IncidentEntryDto>, entity: string): IncidentEntryDto | null {
  for (const e of entries) if (e.rootCause === entity) return e;
  return null;
}
