//! `cityops train`: the trainer's clock of an exercise site. Trainees sit at their own
//! workstations on the site (`cityops site init --exercise`); the trainer's machine publishes
//! the scenario's tape into it as the trainer's clock runs, so every trainee's screen shows the
//! site's time, which is the trainer's. Commands come one per line on standard input:
//!
//! - `pause`, `play`, `speed N` (a factor): the clock;
//! - `seek +S` (seconds ahead) or `seek RFC3339`: moves the clock ahead, publishing what lies
//!   between at once. Back is refused: the site's stream is the exercise's record, and the
//!   trainees' decisions are in it;
//! - `inject ID LON LAT`: one of the scenario's injects (`[[injects]]`) at a place, now;
//! - `end`: ends the exercise on every workstation.
//!
//! The clock changes and the end are operators' events on the site (`ops.clock`, `ops.end`),
//! made by the trainer (the site's roster must say so), and every workstation records them;
//! injects are feed messages on the built-in inject feeds, like a replay's. At the end of
//! standard input the clock plays to the scenario's end and then ends the exercise. A JSON line
//! on standard output says where the clock is after each command.

use std::path::PathBuf;
use std::time::Duration;

use cityops_core::model::Millis;
use cityops_engine::follow::{self, Follower};
use cityops_engine::scenario::Scenario;
use cityops_engine::trainer_clock::TrainerClock;
use cityops_site::Outgoing;
use serde::Serialize;
use tokio::io::AsyncBufReadExt;

use crate::site::SiteArgs;

/// What `cityops train` was told.
pub struct Train {
    pub at: SiteArgs,
    pub scenario: PathBuf,
    pub trainer: String,
    pub pin: Option<String>,
    pub workstation: String,
    pub speed: f64,
    pub paused: bool,
    /// The trainer's cache of the site (a temporary one without it).
    pub db: Option<PathBuf>,
}

/// Where the trainer's clock is.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Status<'a> {
    at: String,
    at_ms: Millis,
    playing: bool,
    speed: f64,
    /// Feed messages published so far (tape lines and injects).
    published: u64,
    /// What the last command did, or why it was refused.
    said: &'a str,
}

fn say(clock: &TrainerClock, said: &str) {
    let s = clock.state();
    let status = Status {
        at: chrono::DateTime::from_timestamp_millis(s.at_ms)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        at_ms: s.at_ms,
        playing: s.playing,
        speed: s.speed,
        published: s.published,
        said,
    };
    println!("{}", serde_json::to_string(&status).expect("a status serializes"));
}

fn wall() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// `cityops train`.
pub fn train(t: Train) -> anyhow::Result<()> {
    anyhow::ensure!(t.speed > 0.0, "--speed must be above 0");
    let scenario = Scenario::load(&t.scenario)?;
    let config = Scenario::site_config(&t.scenario)?;
    let id = t.at.id()?;
    let tmp = tempfile::tempdir()?;
    let db = t.db.clone().unwrap_or_else(|| tmp.path().join("trainer.db"));
    let mut f = Follower::open(&db, id.clone())?;
    crate::site::runtime()?.block_on(async {
        let site = t.at.connect().await?;
        anyhow::ensure!(
            site.exercise().await?,
            "site {id} is live: a trainer drives an exercise site (cityops site init --site ID --exercise)"
        );
        follow::follow_until_idle(&site, &mut f).await?;
        let role = follow::check_operator(f.store(), &t.trainer, t.pin.as_deref())?;
        anyhow::ensure!(
            role == cityops_engine::dto::OperatorRole::Trainer,
            "{} is {} on the site's roster; the exercise's clock is a trainer's",
            t.trainer,
            role.as_str()
        );
        site.publish([Outgoing::config(&id, &config)]).await?;
        // A trainer started again resumes the clock where the site's time is.
        let at = follow::site_time_in(f.store(), &id)?.unwrap_or(scenario.manifest.start_ms);
        let mut clock = TrainerClock::new(id.clone(), scenario, &t.workstation, at);
        let trainer = t.trainer.as_str();
        let now = tokio::time::Instant::now();
        clock.set_speed(trainer, t.speed, now, wall())?;
        clock.set_playing(trainer, !t.paused, now, wall());
        clock.flush(&site).await?;
        say(&clock, "started");
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        let mut input = true;
        loop {
            tokio::select! {
                line = lines.next_line(), if input => {
                    let now = tokio::time::Instant::now();
                    let Some(line) = line? else {
                        // No more commands: play to the end, then end the exercise.
                        input = false;
                        clock.set_playing(trainer, true, now, wall());
                        clock.flush(&site).await?;
                        continue;
                    };
                    let words: Vec<&str> = line.split_whitespace().collect();
                    let said = match words.as_slice() {
                        [] => continue,
                        ["pause"] => {
                            clock.set_playing(trainer, false, now, wall());
                            "paused".to_owned()
                        }
                        ["play"] => {
                            clock.set_playing(trainer, true, now, wall());
                            "playing".to_owned()
                        }
                        ["speed", n] => match n.parse::<f64>() {
                            Ok(s) => match clock.set_speed(trainer, s, now, wall()) {
                                Ok(_) => format!("speed {s}"),
                                Err(e) => format!("refused: {e}"),
                            },
                            Err(_) => format!("refused: speed {n:?} is not a number"),
                        },
                        ["seek", to] => match seek_target(to, clock.state().at_ms) {
                            Ok(target) => match clock.seek(trainer, target, now, wall()) {
                                Ok(_) => "moved ahead".to_owned(),
                                Err(e) => format!("refused: {e}"),
                            },
                            Err(e) => format!("refused: {e}"),
                        },
                        ["inject", inject, lon, lat] => match (lon.parse(), lat.parse()) {
                            (Ok(lon), Ok(lat)) => {
                                clock.note_position(site.last_seq().await?);
                                match clock.inject(trainer, inject, lon, lat, now) {
                                    Ok(p) => format!("injected {} as {}", p.title, p.entity),
                                    Err(e) => format!("refused: {e}"),
                                }
                            }
                            _ => "refused: inject ID LON LAT".to_owned(),
                        },
                        ["end"] => break,
                        _ => format!("refused: unknown command {line:?} (pause, play, speed N, seek +S, inject ID LON LAT, end)"),
                    };
                    clock.flush(&site).await?;
                    say(&clock, &said);
                }
                _ = tokio::time::sleep(Duration::from_millis(100)) => {
                    clock.advance(tokio::time::Instant::now());
                    clock.flush(&site).await?;
                    if !input && clock.finished() {
                        break;
                    }
                }
            }
        }
        clock.end(trainer, tokio::time::Instant::now(), wall());
        clock.flush(&site).await?;
        say(&clock, "exercise ended");
        Ok(())
    })
}

/// Where `seek` goes: `+S` seconds after `now`, or an RFC 3339 time.
fn seek_target(to: &str, now: Millis) -> anyhow::Result<Millis> {
    if let Some(s) = to.strip_prefix('+') {
        let s: f64 = s
            .parse()
            .map_err(|_| anyhow::anyhow!("seek +S takes seconds, not {s:?}"))?;
        return Ok(now + (s * 1000.0) as Millis);
    }
    Ok(chrono::DateTime::parse_from_rfc3339(to)
        .map_err(|e| anyhow::anyhow!("seek {to:?}: {e} (+S or an RFC 3339 time)"))?
        .timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeks_go_ahead_by_seconds_or_to_a_time() {
        assert_eq!(seek_target("+90", 1_000).unwrap(), 91_000);
        assert_eq!(seek_target("1970-01-01T00:00:02Z", 0).unwrap(), 2_000);
        assert!(seek_target("+soon", 0).is_err());
        assert!(seek_target("tomorrow", 0).is_err());
    }
}
