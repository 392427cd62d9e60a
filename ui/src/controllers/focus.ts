/**
 * Drops the keyboard focus back to the page. A clicked button keeps the focus, and the next
 * Enter or Space would press it again instead of reaching the app's keys.
 */
export function blurFocus() {
  if (document.activeElement instanceof HTMLElement) document.activeElement.blur();
}
