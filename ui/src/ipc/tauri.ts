/**
 * The desktop implementation of `Backend`: one Tauri command per method, through the typed
 * client `gen/commands.ts`, which `src-tauri/build.rs` generates from the commands' declarations
 * (so names, argument keys and types cannot drift from the Rust side).
 *
 * Invariant: this folder is the only code that imports `@tauri-apps/api`.
 */
import { Channel } from "@tauri-apps/api/core";
import { toApiError, type Backend } from "./backend";
import * as commands from "./gen/commands";
import type { MapDiffDto } from "./gen/MapDiffDto";

/**
 * Awaits a command's reply and rejects with an `ApiError` whatever went wrong (the generated
 * wrappers only return `invoke`'s promise, so every failure arrives through it).
 */
async function call<T>(reply: Promise<T>): Promise<T> {
  try {
    return await reply;
  } catch (e) {
    throw toApiError(e);
  }
}

export function createTauriBackend(): Backend {
  // The channel must stay referenced for as long as the subscription lives, or its callback
  // could be collected; keep it here rather than in a local of `subscribe`.
  let channel: Channel<MapDiffDto> | null = null;
  return {
    kind: "tauri",
    scenario: () => call(commands.scenario()),
    subscribe: async (onDiff) => {
      channel = new Channel<MapDiffDto>();
      channel.onmessage = onDiff;
      await call(commands.subscribe(channel));
    },
    play: () => call(commands.replayPlay()),
    pause: () => call(commands.replayPause()),
    setSpeed: (speed) => call(commands.replaySpeed(speed)),
    seek: (ms) => call(commands.replaySeek(ms)),
    observation: (id) => call(commands.observation(id)),
    signIn: (name, role, pin) => call(commands.signIn(name, role, pin)),
    roster: () => call(commands.roster()),
    assignRole: (name, role, pin) => call(commands.assignRole(name, role, pin)),
    signOut: () => call(commands.signOut()),
    operator: () => call(commands.operator()),
    incident: (id) => call(commands.incident(id)),
    transition: (id, to) => call(commands.incidentTransition(id, to)),
    take: (id, owner) => call(commands.incidentTake(id, owner)),
    lookAt: (incident) => call(commands.lookAt(incident)),
    merge: (into, from) => call(commands.incidentMerge(into, from)),
    split: (from, entity) => call(commands.incidentSplit(from, entity)),
    reassign: (from, entity, to) => call(commands.incidentReassign(from, entity, to)),
    undo: () => call(commands.incidentUndo()),
    tickSop: (id, step, ticked) => call(commands.incidentTickSop(id, step, ticked)),
    addNote: (id, text) => call(commands.incidentNote(id, text)),
    newIncident: (request) => call(commands.newIncident(request)),
    queryArea: (query) => call(commands.queryArea(query)),
    overrideResolve: (id, reason) => call(commands.incidentOverride(id, "resolved", reason)),
    backends: () => call(commands.backends()),
    previewAction: (request) => call(commands.previewAction(request)),
    armAction: (token) => call(commands.armAction(token)),
    confirmAction: (token) => call(commands.confirmAction(token)),
    outbox: () => call(commands.outbox()),
    retryAction: (id) => call(commands.retryAction(id)),
    cancelAction: (id) => call(commands.cancelAction(id)),
    quarantine: (feed) => call(commands.quarantine(feed)),
    report: (mapPng) => call(commands.report(mapPng)),
    kpi: () => call(commands.kpi()),
    inject: (request) => call(commands.inject(request)),
    exercise: () => call(commands.exercise()),
    endExercise: (by, mapPng) => call(commands.endExercise(by, mapPng)),
    openTrainerView: () => call(commands.openTrainerView()),
    closeTrainerView: () => call(commands.closeTrainerView()),
    openWallDisplay: () => call(commands.openWallDisplay()),
  };
}
