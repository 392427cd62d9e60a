/**
 * The action dialog's draft: what the operator is about to dispatch, for which target, and the
 * per-kind parameters, prefilled from the incident or the selected point. Pure functions; the
 * dialog keeps the draft and asks the engine for a preview of it.
 */
import type {
  ActionParams,
  ActionPreviewDto,
  ActionRequestDto,
  AlertSeverity,
  BackendDto,
  BackendKind,
} from "../ipc/backend";

/** What an action is for: an incident (located by the engine) or a point on the map. */
export type DispatchTarget = {
  readonly incident: string | null;
  readonly at: readonly [number, number] | null;
  /** The incident's title or the selected observation's title: prefills descriptions. */
  readonly title: string;
  /** The entity the action most likely concerns (root cause or selection): prefills the device. */
  readonly entity: string | null;
};

/** Every field any kind uses; only the chosen backend's kind is sent. */
export type Draft = {
  serviceCode: string;
  description: string;
  message: string;
  device: string;
  command: string;
  unit: string;
  task: string;
  remarks: string;
  headline: string;
  alertDescription: string;
  instruction: string;
  severity: AlertSeverity;
  expiresMinutes: number;
};

export const ALERT_SEVERITIES: readonly AlertSeverity[] = ["extreme", "severe", "moderate", "minor"];

export const KIND_LABELS: Record<BackendKind, string> = {
  open311: "Open311",
  webhook: "Webhook",
  mqtt: "MQTT device",
  cot: "TAK / CoT",
  cap: "CAP alert",
};

/** A fresh draft for `backend`, prefilled from the target. */
export function draftFor(target: DispatchTarget, backend: BackendDto): Draft {
  const first = backend.choices[0] ?? "";
  return {
    serviceCode: first,
    description: target.title,
    message: target.title,
    device: target.entity ?? "",
    command: first,
    unit: "",
    task: first,
    remarks: target.title,
    headline: target.title,
    alertDescription: target.title,
    instruction: "",
    severity: "severe",
    expiresMinutes: 60,
  };
}

/** The parameters the engine takes for `kind`, from the draft (text trimmed). */
export function paramsOf(kind: BackendKind, d: Draft): ActionParams {
  switch (kind) {
    case "open311":
      return { kind: "serviceRequest", serviceCode: d.serviceCode, description: d.description.trim() };
    case "webhook":
      return { kind: "notify", message: d.message.trim() };
    case "mqtt":
      return { kind: "deviceCommand", device: d.device.trim(), command: d.command };
    case "cot":
      return { kind: "taskUnit", unit: d.unit.trim(), task: d.task, remarks: d.remarks.trim() };
    case "cap":
      return {
        kind: "publicAlert",
        headline: d.headline.trim(),
        description: d.alertDescription.trim(),
        instruction: d.instruction.trim(),
        severity: d.severity,
        expiresMinutes: Math.round(d.expiresMinutes),
      };
  }
}

/** What is still missing before a preview makes sense, in words; `null` when nothing is. */
export function missing(p: ActionParams): string | null {
  const empty = (s: string) => s.trim() === "";
  switch (p.kind) {
    case "serviceRequest":
      return empty(p.serviceCode) ? "Pick a service code." : empty(p.description) ? "Describe the work." : null;
    case "notify":
      return empty(p.message) ? "Write the message." : null;
    case "deviceCommand":
      return empty(p.device) ? "Name the device." : empty(p.command) ? "Pick a command." : null;
    case "taskUnit":
      return empty(p.unit) ? "Name the unit (callsign or uid)." : empty(p.task) ? "Pick a task." : null;
    case "publicAlert":
      if (empty(p.headline)) return "Write a headline.";
      if (empty(p.description)) return "Describe the hazard.";
      if (empty(p.instruction)) return "Tell the public what to do.";
      return Number.isFinite(p.expiresMinutes) && p.expiresMinutes >= 5 ? null : "An alert lasts at least 5 minutes.";
  }
}

export function requestOf(backend: BackendDto, target: DispatchTarget, params: ActionParams): ActionRequestDto {
  return {
    backend: backend.id,
    incident: target.incident,
    at: target.incident === null && target.at ? [target.at[0], target.at[1]] : null,
    params,
  };
}

/** The sentence a dangerous action's second confirmation asks, naming what will happen. */
export function confirmAgainText(preview: ActionPreviewDto, params: ActionParams): string {
  const exercise = preview.exercise ? " (exercise)" : "";
  switch (params.kind) {
    case "deviceCommand":
      return `Send device command ${params.command} to ${params.device}${exercise} — confirm again`;
    case "publicAlert":
      return `Publish public alert "${params.headline}" (${params.severity}) to the public${exercise} — confirm again`;
    default:
      return `${preview.summary}${exercise} — confirm again`;
  }
}

/** Where the action is aimed, in words, for the dialog's heading. */
export function targetLabel(t: DispatchTarget): string {
  if (t.incident !== null) return `Incident: ${t.title}`;
  if (t.at) return `Point ${t.at[1].toFixed(5)} N, ${t.at[0].toFixed(5)} E${t.title ? ` (${t.title})` : ""}`;
  return t.title;
}
