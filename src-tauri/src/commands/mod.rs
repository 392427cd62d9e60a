//! Tauri commands, one module per domain. Each domain file holds one `commands!` invocation
//! and nothing else: that is where a command is declared, once. From it this crate makes the
//! `#[tauri::command]` functions and the handler; `build.rs` `include!`s the same files with its
//! own `commands!` to make the permission list, the capability of every window and the
//! TypeScript client (`ui/src/ipc/gen/commands.ts`). Errors cross as `ApiError { code, message }`
//! after the engine logged their full chain.
//!
//! A declaration:
//!
//! ```text
//! /// What it does (the docs of the Rust function and of the TypeScript wrapper).
//! #[windows(main, trainer)]
//! async fn report(engine; map_png: Option<String>) -> String { engine.report(map_png).await }
//! ```
//!
//! - `windows(..)`: the labels of the windows whose capability grants the command.
//! - Before the `;`, what Tauri provides: `engine` (the [`cityops_engine::Engine`]) and, after
//!   a comma, `app` (the `tauri::AppHandle`), for commands that open windows.
//! - After the `;`, the arguments the UI sends, with their types; the UI's keys are their
//!   camelCase. Types are named as the TypeScript client names them: DTOs from
//!   `cityops_engine::dto` (all in scope), `String`, numbers, `bool`, `Option`, `Vec`, and
//!   `Channel` for a stream.
//! - `-> T`: what the command answers; the body is one expression (usually a call onto the
//!   engine) giving `Result<T, E>` with `E` into `ApiError`.
//! - `fn` runs on the main thread, in the order the UI called (the clock controls); `async fn`
//!   runs on the async runtime and may wait for the engine.
//!
//! The domain files cannot have `//!` docs (an `include!`d file takes no inner attributes), so
//! each domain's description sits on its line in `domains!` below.

/// Turns one domain's declarations into `#[tauri::command]` functions, the list of its command
/// names (`COMMANDS`) and its invoke handler (`handler`). The declarations are normalised one at
/// a time (a plain `fn` and an `async fn` differ by a token macro_rules cannot make optional),
/// then expanded together.
macro_rules! commands {
    (@next [$($done:tt)*]) => {
        commands!(@expand $($done)*);
    };
    (@next [$($done:tt)*] $(#[doc = $doc:literal])* #[windows($($window:ident),* $(,)?)] async fn $($rest:tt)*) => {
        commands!(@signature [$($done)*] [async] [$($doc)*] $($rest)*);
    };
    (@next [$($done:tt)*] $(#[doc = $doc:literal])* #[windows($($window:ident),* $(,)?)] fn $($rest:tt)*) => {
        commands!(@signature [$($done)*] [] [$($doc)*] $($rest)*);
    };
    (@signature [$($done:tt)*] [$($async:tt)?] [$($doc:literal)*]
        $name:ident($engine:ident $(, $app:ident)? $(; $($arg:ident : $ty:ty),* $(,)?)?) -> $ret:ty $body:block $($rest:tt)*) => {
        commands!(@next [$($done)* {[$($async)?] [$($doc)*] $name [$engine $($app)?] [$($($arg: $ty),*)?] [$ret] $body}] $($rest)*);
    };
    (@expand $({[$($async:tt)?] [$($doc:literal)*] $name:ident [$engine:ident $($app:ident)?] [$($arg:ident: $ty:ty),*] [$ret:ty] $body:block})*) => {
        // The declarations name DTOs as the TypeScript client does, without a path.
        #[allow(unused_imports)]
        use cityops_engine::dto::*;
        #[allow(unused_imports)]
        use tauri::ipc::Channel;

        $(
            $(#[doc = $doc])*
            #[tauri::command]
            $($async)? fn $name(
                $engine: tauri::State<'_, cityops_engine::Engine>,
                $($app: tauri::AppHandle,)?
                $($arg: $ty),*
            ) -> Result<$ret, cityops_engine::dto::ApiError> {
                let reply = $body;
                reply.map_err(Into::into)
            }
        )*

        /// The names of this domain's commands, as the UI calls them.
        pub const COMMANDS: &[&str] = &[$(stringify!($name)),*];

        /// Runs a command of this domain.
        pub fn handler() -> impl Fn(tauri::ipc::Invoke<tauri::Wry>) -> bool + Send + Sync + 'static {
            tauri::generate_handler![$($name),*]
        }
    };
    ($($declarations:tt)*) => {
        commands!(@next [] $($declarations)*);
    };
}

/// Declares the domain modules and makes one invoke handler of theirs.
macro_rules! domains {
    ($($(#[doc = $doc:literal])* $domain:ident),* $(,)?) => {
        $($(#[doc = $doc])* mod $domain;)*

        /// Every command of the app: hands an invoke to the domain that declares its command.
        pub fn handler() -> impl Fn(tauri::ipc::Invoke<tauri::Wry>) -> bool + Send + Sync + 'static {
            type Handler = Box<dyn Fn(tauri::ipc::Invoke<tauri::Wry>) -> bool + Send + Sync>;
            let domains: Vec<(&[&str], Handler)> = vec![$(($domain::COMMANDS, Box::new($domain::handler()))),*];
            move |invoke: tauri::ipc::Invoke<tauri::Wry>| {
                let name = invoke.message.command();
                match domains.iter().find(|(names, _)| names.contains(&name)) {
                    Some((_, handler)) => handler(invoke),
                    None => false,
                }
            }
        }
    };
}

domains! {
    /// The loaded scenario.
    scenario,
    /// The picture's stream and the clock controls.
    replay,
    /// Feeds: the quarantine. Feed health needs no command: it travels in the diff stream.
    feeds,
    /// Operators and incidents: sign-in, the roster, the detail, the lifecycle, manual decisions
    /// and SOP ticks.
    incidents,
    /// Dispatch: backends, preview, confirm, the outbox, retry and cancel.
    dispatch,
    /// Exercises: the report, KPIs, injects, the exercise and its end, and the trainer view's
    /// window.
    training,
    /// The wall display's window.
    wall,
}
