/**
 * Data state: what the engine has told us about the map, and nothing about how it is shown.
 *
 * Every function here is pure: it returns a new state and never mutates its input. Per-layer
 * maps are copied only when a diff touches that layer, so the map module can tell which
 * layers changed by comparing map identity (`prev.features.transport !== next.features.transport`).
 */
import type { ClockDto, Layer, MapDiffDto, MapFeatureDto } from "../ipc/backend";

/** The four observation layers, in display order (also the order of the 1-4 hotkeys). */
export const LAYERS: readonly Layer[] = ["transport", "security", "utility", "alerts"];

export type LayerFeatures = ReadonlyMap<string, MapFeatureDto>;
export type FeaturesByLayer = Readonly<Record<Layer, LayerFeatures>>;

/** What the engine reports per layer: the newest observation time and how many it holds. */
export type LayerAge = { readonly newestObservedMs: number | null; readonly count: number };

export type DataState = {
  readonly features: FeaturesByLayer;
  readonly ages: Readonly<Record<Layer, LayerAge>>;
  /** `null` until the first diff arrives. */
  readonly clock: ClockDto | null;
};

const NO_AGE: LayerAge = { newestObservedMs: null, count: 0 };
const EMPTY: LayerFeatures = new Map();

export function emptyData(): DataState {
  return {
    features: { transport: EMPTY, security: EMPTY, utility: EMPTY, alerts: EMPTY },
    ages: { transport: NO_AGE, security: NO_AGE, utility: NO_AGE, alerts: NO_AGE },
    clock: null,
  };
}

/**
 * Folds one diff into the state. A reset diff replaces the whole picture; otherwise each
 * upsert replaces the feature with the same id, removing it from its old layer if it moved.
 */
export function applyDiff(state: DataState, diff: MapDiffDto): DataState {
  const base = diff.reset ? emptyData() : state;
  const features: Record<Layer, LayerFeatures> = { ...base.features };
  // Layers already copied during this diff; the others still share the previous state's map.
  const owned = new Set<Layer>();
  const writable = (layer: Layer): Map<string, MapFeatureDto> => {
    if (!owned.has(layer)) {
      features[layer] = new Map(features[layer]);
      owned.add(layer);
    }
    return features[layer] as Map<string, MapFeatureDto>;
  };

  for (const f of diff.upserts) {
    for (const layer of LAYERS) {
      if (layer !== f.layer && features[layer].has(f.id)) writable(layer).delete(f.id);
    }
    writable(f.layer).set(f.id, f);
  }

  const ages: Record<Layer, LayerAge> = { ...base.ages };
  for (const a of diff.layers) {
    ages[a.layer] = { newestObservedMs: a.newestObservedMs, count: a.count };
  }

  return { features, ages, clock: diff.clock };
}

/** How many entities the map shows on this layer. */
export function featureCount(state: DataState, layer: Layer): number {
  return state.features[layer].size;
}

/**
 * How old the newest observation on this layer is, measured on the scenario clock (not wall
 * time, so a paused or fast replay reads sensibly). `null` when the layer has no data yet.
 */
export function layerAgeMs(state: DataState, layer: Layer): number | null {
  const newest = state.ages[layer].newestObservedMs;
  if (newest === null || state.clock === null) return null;
  return Math.max(0, state.clock.nowMs - newest);
}

/** The feature with this id on whichever layer holds it. */
export function findFeature(state: DataState, id: string): MapFeatureDto | undefined {
  for (const layer of LAYERS) {
    const f = state.features[layer].get(id);
    if (f) return f;
  }
  return undefined;
}

/**
 * Applies a clock change the UI already knows about (a command the engine accepted) before
 * the engine's next diff confirms it; that diff's clock replaces this one.
 */
export function patchClock(state: DataState, patch: Partial<ClockDto>): DataState {
  if (state.clock === null) return state;
  return { ...state, clock: { ...state.clock, ...patch } };
}
