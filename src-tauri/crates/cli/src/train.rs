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
use cityops_site::{Op, OpEvent, Outgoing, Site, SiteId};
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

/// The trainer's clock and what it has published.
struct Clock<'a> {
    site: &'a Site,
    id: SiteId,
    scenario: &'a Scenario,
    trainer: &'a str,
    workstation: &'a str,
    at: Millis,
    end: Millis,
    playing: bool,
    speed: f64,
    last: tokio::time::Instant,
    next: usize,
    next_tick: Millis,
    published: u64,
}

impl Clock<'_> {
    /// Moves the clock by the real time passed (when playing), publishing what it passed.
    async fn advance(&mut self) -> anyhow::Result<()> {
        let now = tokio::time::Instant::now();
        if self.playing {
            let passed = now.duration_since(self.last).as_secs_f64() * self.speed * 1000.0;
            let to = (self.at + passed as Millis).min(self.end);
            self.publish_to(to).await?;
        }
        self.last = now;
        Ok(())
    }

    /// Publishes every tape message up to `to` and a clock tick for every second passed.
    async fn publish_to(&mut self, to: Millis) -> anyhow::Result<()> {
        let mut out = Vec::new();
        let messages = &self.scenario.messages;
        while self.next < messages.len() && messages[self.next].time_ms <= to {
            let m = &messages[self.next];
            while self.next_tick <= m.time_ms {
                out.push(Outgoing::tick(&self.id, self.next_tick));
                self.next_tick += 1000;
            }
            out.push(Outgoing::tape_line(&self.id, m));
            self.published += 1;
            self.next += 1;
        }
        while self.next_tick <= to {
            out.push(Outgoing::tick(&self.id, self.next_tick));
            self.next_tick += 1000;
        }
        if !out.is_empty() {
            self.site.publish(out).await?;
        }
        self.at = self.at.max(to);
        Ok(())
    }

    /// Publishes one of the trainer's events, made now.
    async fn event(&self, op: Op) -> anyhow::Result<()> {
        let wall_ms = chrono::Utc::now().timestamp_millis();
        let event = OpEvent {
            id: format!("{}-{wall_ms}-{:016x}", self.workstation, rand::random::<u64>()),
            operator: self.trainer.to_owned(),
            workstation: self.workstation.to_owned(),
            at_ms: self.at,
            wall_ms,
            op,
        };
        self.site.publish([Outgoing::event(&self.id, &event)]).await?;
        Ok(())
    }

    async fn clock_event(&self, seek_ms: Option<Millis>) -> anyhow::Result<()> {
        self.event(Op::Clock {
            playing: self.playing,
            speed: format!("{}", self.speed),
            seek_ms,
        })
        .await
    }

    /// One of the scenario's injects at `lon`, `lat`, now.
    async fn inject(&mut self, inject: &str, lon: f64, lat: f64) -> anyhow::Result<String> {
        let spec = self
            .scenario
            .manifest
            .injects
            .iter()
            .find(|s| s.id == inject)
            .ok_or_else(|| anyhow::anyhow!("no inject {inject:?} in the scenario's palette"))?;
        let (place, asset) = cityops_core::inject::place(spec, &self.scenario.assets, lon, lat)?;
        // The inject's number must be unique in the site: the stream's next position is.
        let n = self.site.last_seq().await? + 1;
        let msg = cityops_core::inject::message(spec, n, self.at, place, asset, self.trainer);
        self.site.publish([Outgoing::tape_line(&self.id, &msg)]).await?;
        self.published += 1;
        Ok(format!("injected {} at {:.5},{:.5}", spec.title, place.lon, place.lat))
    }

    fn status<'s>(&self, said: &'s str) -> Status<'s> {
        Status {
            at: chrono::DateTime::from_timestamp_millis(self.at)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            at_ms: self.at,
            playing: self.playing,
            speed: self.speed,
            published: self.published,
            said,
        }
    }
}

fn say(status: &Status<'_>) {
    println!("{}", serde_json::to_string(status).expect("a status serializes"));
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
        let start = scenario.manifest.start_ms;
        let at = follow::site_time_in(f.store(), &id)?.unwrap_or(start).max(start);
        let mut clock = Clock {
            site: &site,
            id: id.clone(),
            scenario: &scenario,
            trainer: &t.trainer,
            workstation: &t.workstation,
            at,
            end: scenario.end_ms(),
            playing: !t.paused,
            speed: t.speed,
            last: tokio::time::Instant::now(),
            next: scenario.messages.partition_point(|m| m.time_ms <= at),
            next_tick: (at.div_euclid(1000) + 1) * 1000,
            published: 0,
        };
        clock.clock_event(None).await?;
        say(&clock.status("started"));
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        let mut input = true;
        loop {
            tokio::select! {
                line = lines.next_line(), if input => {
                    clock.advance().await?;
                    let Some(line) = line? else {
                        // No more commands: play to the end, then end the exercise.
                        input = false;
                        clock.playing = true;
                        continue;
                    };
                    let words: Vec<&str> = line.split_whitespace().collect();
                    let said = match words.as_slice() {
                        [] => continue,
                        ["pause"] => {
                            clock.playing = false;
                            clock.clock_event(None).await?;
                            "paused".to_owned()
                        }
                        ["play"] => {
                            clock.playing = true;
                            clock.clock_event(None).await?;
                            "playing".to_owned()
                        }
                        ["speed", n] => match n.parse::<f64>() {
                            Ok(s) if s > 0.0 => {
                                clock.speed = s;
                                clock.clock_event(None).await?;
                                format!("speed {s}")
                            }
                            _ => format!("refused: speed {n:?} is not a factor above 0"),
                        },
                        ["seek", to] => match seek_target(to, clock.at) {
                            Ok(target) if target < clock.at => {
                                "refused: an exercise on a site cannot go back (its stream is the record of what the trainees did)".to_owned()
                            }
                            Ok(target) => {
                                clock.publish_to(target.min(clock.end)).await?;
                                clock.clock_event(Some(clock.at)).await?;
                                "moved ahead".to_owned()
                            }
                            Err(e) => format!("refused: {e}"),
                        },
                        ["inject", inject, lon, lat] => match (lon.parse(), lat.parse()) {
                            (Ok(lon), Ok(lat)) => match clock.inject(inject, lon, lat).await {
                                Ok(s) => s,
                                Err(e) => format!("refused: {e:#}"),
                            },
                            _ => "refused: inject ID LON LAT".to_owned(),
                        },
                        ["end"] => break,
                        _ => format!("refused: unknown command {line:?} (pause, play, speed N, seek +S, inject ID LON LAT, end)"),
                    };
                    say(&clock.status(&said));
                }
                _ = tokio::time::sleep(Duration::from_millis(100)) => {
                    clock.advance().await?;
                    if !input && clock.at >= clock.end {
                        break;
                    }
                }
            }
        }
        clock.advance().await?;
        clock.event(Op::End).await?;
        say(&clock.status("exercise ended"));
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
