// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
/**
 * A call the engine accepted: its observation's entity, whose incident opens once the clock
 * has correlated the second it was entered in (on a site, once the site applied it).
 */
export type CallDto = { 
/**
 * `call/<n>`; `None` on a site, where the number is given where the stream places the
 * call.
 */
entity: string | null, };
