/**
 * The open dialogs and overlays as one stack (see `state/modals.ts`): each controller opens and
 * closes its own through here, so which one gets the keys is a lookup, not a chain of flags.
 */
import { isOpen, NO_MODALS, pop, push, top, type ModalId, type ModalStack } from "../state/modals";

export class Modals {
  stack = $state.raw<ModalStack>(NO_MODALS);
  /** How each open modal closes: its owner knows what else closing it resets. */
  #closers = new Map<ModalId, () => void>();

  /** The modal on top, which gets the keys. */
  readonly top = $derived(top(this.stack));

  /** Opens `id`; `close` is what closing it from the keyboard runs (by default, just close). */
  open(id: ModalId, close: () => void = () => this.close(id)) {
    this.#closers.set(id, close);
    this.stack = push(this.stack, id);
  }

  close(id: ModalId) {
    this.#closers.delete(id);
    this.stack = pop(this.stack, id);
  }

  /** Opens or closes `id`, as its owner's state says. */
  show(id: ModalId, open: boolean, close?: () => void) {
    if (open && !this.isOpen(id)) this.open(id, close);
    else if (!open) this.close(id);
  }

  isOpen(id: ModalId): boolean {
    return isOpen(this.stack, id);
  }

  /** Closes the modal on top the way its owner closes it. */
  closeTop() {
    const id = this.top;
    if (id !== null) (this.#closers.get(id) ?? (() => this.close(id)))();
  }
}
