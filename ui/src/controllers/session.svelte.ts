/**
 * The operator and the session: who is signed in, the sign-in dialog and why it opened, and
 * the roster a supervisor edits. Every recorded action goes through `asOperator`, which asks
 * for a sign-in first and runs the action after it.
 */
import { toApiError, type Backend, type OperatorDto, type OperatorRole, type RosterEntryDto } from "../ipc/backend";
import type { Report } from "./errors.svelte";
import { blurFocus } from "./focus";
import type { Modals } from "./modals.svelte";

/** An open sign-in dialog: why it opened and what to do once signed in. */
export type SignInRequest = { readonly reason: string | null; readonly then: (() => void) | null };

export class Session {
  operator = $state.raw<OperatorDto | null>(null);
  #signIn = $state.raw<SignInRequest | null>(null);

  readonly #backend: Backend;
  readonly #report: Report;
  readonly #modals: Modals;

  constructor(backend: Backend, report: Report, modals: Modals) {
    this.#backend = backend;
    this.#report = report;
    this.#modals = modals;
  }

  /** The open sign-in dialog, or `null`. */
  get signIn(): SignInRequest | null {
    return this.#signIn;
  }

  get role(): OperatorRole | null {
    return this.operator?.role ?? null;
  }

  get rosterOpen(): boolean {
    return this.#modals.isOpen("roster");
  }

  /** Reads who is signed in already (the engine keeps the session across windows). */
  load() {
    this.#backend.operator().then(
      (op) => (this.operator = op),
      (e) => this.#report(e, "Reading the operator failed"),
    );
  }

  #ask(request: SignInRequest | null) {
    this.#signIn = request;
    this.#modals.show("signIn", request !== null, this.cancelSignIn);
  }

  openSignIn = () => this.#ask({ reason: null, then: null });

  cancelSignIn = () => this.#ask(null);

  /** True when someone is signed in; otherwise asks for a sign-in "to `what`" and runs `then` after it. */
  signedIn(what: string, then: () => void): boolean {
    if (this.operator) return true;
    this.#ask({ reason: `Sign in to ${what}.`, then });
    return false;
  }

  /** Runs an operator action; asks for a sign-in first when nobody is signed in. */
  asOperator(what: string, action: () => Promise<unknown>) {
    if (!this.signedIn(what, () => this.asOperator(what, action))) return;
    action().catch((e) => {
      const err = toApiError(e);
      // The engine forgot the session (a restart): sign in again and retry.
      if (err.code === "forbidden" && /sign in/i.test(err.message)) {
        this.operator = null;
        this.#ask({ reason: err.message, then: () => this.asOperator(what, action) });
      } else {
        this.#report(e, `Could not ${what}`);
      }
    });
  }

  submitSignIn = async (name: string, role: OperatorRole, secret: string | null) => {
    const then = this.#signIn?.then ?? null;
    try {
      this.operator = await this.#backend.signIn(name, role, secret);
      this.#ask(null);
      blurFocus();
      then?.();
    } catch (e) {
      this.#report(e, "Sign-in failed");
    }
  };

  signOut = async () => {
    try {
      await this.#backend.signOut();
      this.operator = null;
    } catch (e) {
      this.#report(e, "Sign-out failed");
    }
  };

  openRoster = () => this.#modals.open("roster");

  closeRoster = () => this.#modals.close("roster");

  /** Reads the roster for the dialog, rejecting with an `ApiError` it can show as is. */
  loadRoster = (): Promise<RosterEntryDto[]> =>
    this.#backend.roster().catch((e: unknown) => Promise.reject(toApiError(e)));

  assignRole = (name: string, role: OperatorRole, pin: string | null): Promise<void> =>
    this.#backend.assignRole(name, role, pin).catch((e: unknown) => Promise.reject(toApiError(e)));
}
