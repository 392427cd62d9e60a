//! The trainer's clock of an exercise site: the one piece of an exercise across machines that
//! runs on the trainer's machine, in `cityops train` and in a trainer's window
//! (`cityops-desktop --nats URL --site ID --train DIR`).
//!
//! Trainees sit at their own workstations on the site. The trainer's machine publishes the
//! scenario's tape into the site as this clock runs, with a clock tick for every second passed,
//! so every trainee's screen shows the site's time, which is the trainer's. The clock's changes
//! and the end are operators' events on the site (`ops.clock`, `ops.end`) made by the trainer,
//! whom the site's roster must name as one; injects are feed messages on the built-in inject
//! feeds, like a replay's.
//!
//! The clock itself does no IO: its controls queue what they make, and [`TrainerClock::flush`]
//! publishes the queue. What a failed publish left stays queued and goes out again with the
//! same message ids, which the stream de-duplicates, so nothing is sent twice or lost while
//! the link is down. Time is a parameter (`tokio::time::Instant`), so the clock stands still
//! whenever its owner stops advancing it, which a workstation does while the site cannot be
//! reached: the trainees would not see that time anyway.

use cityops_core::model::Millis;
use cityops_site::{Op, OpEvent, Outgoing, Site, SiteError, SiteId};
use tokio::time::Instant;

use crate::scenario::Scenario;

/// Why the trainer's clock refused a control.
#[derive(Debug, thiserror::Error)]
pub enum ClockRefusal {
    #[error("an exercise on a site cannot go back (its stream is the record of what the trainees did)")]
    Back,
    #[error("speed {0} is not a factor above 0 (a site's exercise runs at a factor of real time)")]
    Speed(f64),
    #[error("no inject {0:?} in the scenario's palette")]
    NoInject(String),
    #[error("inject {inject:?}: {reason}")]
    Place { inject: String, reason: String },
}

/// An inject placed by the trainer, as the window shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    pub n: u64,
    pub inject: String,
    pub at_ms: Millis,
    pub entity: String,
    pub title: String,
}

/// Where the clock is.
#[derive(Debug, Clone, PartialEq)]
pub struct ClockState {
    pub at_ms: Millis,
    pub end_ms: Millis,
    pub playing: bool,
    pub speed: f64,
    /// Feed messages published so far (tape lines and injects).
    pub published: u64,
    /// Messages made but not yet accepted by the site.
    pub queued: usize,
}

/// The trainer's clock and what it has yet to publish.
pub struct TrainerClock {
    id: SiteId,
    scenario: Scenario,
    workstation: String,
    at: Millis,
    end: Millis,
    playing: bool,
    speed: f64,
    last: Option<Instant>,
    /// The next tape message to publish.
    next: usize,
    next_tick: Millis,
    published: u64,
    /// The number the next inject takes (see [`TrainerClock::note_position`]).
    next_inject: u64,
    queue: Vec<Outgoing>,
}

impl TrainerClock {
    /// A clock at `at` (the site's time, where a trainer started again resumes), paused.
    pub fn new(id: SiteId, scenario: Scenario, workstation: &str, at: Millis) -> TrainerClock {
        let at = at.max(scenario.manifest.start_ms);
        TrainerClock {
            id,
            end: scenario.end_ms(),
            next: scenario.messages.partition_point(|m| m.time_ms <= at),
            next_tick: (at.div_euclid(1000) + 1) * 1000,
            scenario,
            workstation: workstation.to_owned(),
            at,
            playing: false,
            speed: 1.0,
            last: None,
            published: 0,
            next_inject: 1,
            queue: Vec::new(),
        }
    }

    /// The scenario the clock plays.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    pub fn state(&self) -> ClockState {
        ClockState {
            at_ms: self.at,
            end_ms: self.end,
            playing: self.playing,
            speed: self.speed,
            published: self.published,
            queued: self.queue.len(),
        }
    }

    /// The clock reached the scenario's end.
    pub fn finished(&self) -> bool {
        self.at >= self.end
    }

    /// Moves the clock by the real time passed since the last call (when playing), queueing
    /// what it passed.
    pub fn advance(&mut self, now: Instant) {
        if let (true, Some(last)) = (self.playing, self.last) {
            let passed = now.duration_since(last).as_secs_f64() * self.speed * 1000.0;
            let to = (self.at + passed as Millis).min(self.end);
            self.run_to(to);
        }
        self.last = Some(now);
    }

    /// Keeps the clock where it is for the real time passed (the site cannot be reached).
    pub fn hold(&mut self, now: Instant) {
        self.last = Some(now);
    }

    /// Queues every tape message up to `to` and a clock tick for every second passed.
    fn run_to(&mut self, to: Millis) {
        let messages = &self.scenario.messages;
        while self.next < messages.len() && messages[self.next].time_ms <= to {
            let m = &messages[self.next];
            while self.next_tick <= m.time_ms {
                self.queue.push(Outgoing::tick(&self.id, self.next_tick));
                self.next_tick += 1000;
            }
            self.queue.push(Outgoing::tape_line(&self.id, m));
            self.published += 1;
            self.next += 1;
        }
        while self.next_tick <= to {
            self.queue.push(Outgoing::tick(&self.id, self.next_tick));
            self.next_tick += 1000;
        }
        self.at = self.at.max(to);
    }

    /// Queues one of the trainer's events, made now; returns its id.
    fn event(&mut self, trainer: &str, op: Op, wall_ms: Millis) -> String {
        let event = OpEvent {
            id: format!("{}-{wall_ms}-{:016x}", self.workstation, rand::random::<u64>()),
            operator: trainer.to_owned(),
            workstation: self.workstation.clone(),
            at_ms: self.at,
            wall_ms,
            op,
        };
        self.queue.push(Outgoing::event(&self.id, &event));
        event.id
    }

    fn clock_event(&mut self, trainer: &str, seek_ms: Option<Millis>, wall_ms: Millis) -> String {
        let op = Op::Clock {
            playing: self.playing,
            speed: format!("{}", self.speed),
            seek_ms,
        };
        self.event(trainer, op, wall_ms)
    }

    /// Starts or stops the clock.
    pub fn set_playing(&mut self, trainer: &str, playing: bool, now: Instant, wall_ms: Millis) -> String {
        self.advance(now);
        self.playing = playing;
        self.clock_event(trainer, None, wall_ms)
    }

    /// Sets the speed, a factor of real time.
    pub fn set_speed(
        &mut self,
        trainer: &str,
        speed: f64,
        now: Instant,
        wall_ms: Millis,
    ) -> Result<String, ClockRefusal> {
        if !(speed.is_finite() && speed > 0.0) {
            return Err(ClockRefusal::Speed(speed));
        }
        self.advance(now);
        self.speed = speed;
        Ok(self.clock_event(trainer, None, wall_ms))
    }

    /// Moves the clock ahead to `to` (at most the scenario's end), queueing what lies between
    /// at once. Back is refused: the site's stream is the exercise's record, and the trainees'
    /// decisions are in it.
    pub fn seek(&mut self, trainer: &str, to: Millis, now: Instant, wall_ms: Millis) -> Result<String, ClockRefusal> {
        self.advance(now);
        if to < self.at {
            return Err(ClockRefusal::Back);
        }
        self.run_to(to.min(self.end));
        Ok(self.clock_event(trainer, Some(self.at), wall_ms))
    }

    /// The site's stream has reached `position`: injects are numbered after it, so an inject's
    /// entity (`inject/<n>`) is unique in the site, as a trainer started again needs.
    pub fn note_position(&mut self, position: u64) {
        self.next_inject = self.next_inject.max(position + 1);
    }

    /// One of the scenario's injects at `lon`, `lat`, now.
    pub fn inject(
        &mut self,
        trainer: &str,
        inject: &str,
        lon: f64,
        lat: f64,
        now: Instant,
    ) -> Result<Placed, ClockRefusal> {
        self.advance(now);
        let spec = self
            .scenario
            .manifest
            .injects
            .iter()
            .find(|s| s.id == inject)
            .ok_or_else(|| ClockRefusal::NoInject(inject.to_owned()))?;
        let (place, asset) =
            cityops_core::inject::place(spec, &self.scenario.assets, lon, lat).map_err(|e| ClockRefusal::Place {
                inject: inject.to_owned(),
                reason: e.to_string(),
            })?;
        let n = self.next_inject;
        self.next_inject += 1;
        let msg = cityops_core::inject::message(spec, n, self.at, place, asset, trainer);
        let placed = Placed {
            n,
            inject: spec.id.clone(),
            at_ms: self.at,
            entity: cityops_core::inject::entity(spec, n, asset),
            title: cityops_core::inject::title(spec, asset),
        };
        self.queue.push(Outgoing::tape_line(&self.id, &msg));
        self.published += 1;
        Ok(placed)
    }

    /// Ends the exercise on every workstation; returns the event's id.
    pub fn end(&mut self, trainer: &str, now: Instant, wall_ms: Millis) -> String {
        self.advance(now);
        self.playing = false;
        self.event(trainer, Op::End, wall_ms)
    }

    /// Takes what is queued, to publish it; give back what could not go with [`Self::requeue`].
    pub fn take_queue(&mut self) -> Vec<Outgoing> {
        std::mem::take(&mut self.queue)
    }

    /// Puts back messages a publish could not deliver, ahead of anything queued since.
    pub fn requeue(&mut self, mut messages: Vec<Outgoing>) {
        messages.append(&mut self.queue);
        self.queue = messages;
    }

    /// Publishes what is queued; on failure it stays queued, to go out again.
    pub async fn flush(&mut self, site: &Site) -> Result<(), SiteError> {
        let out = self.take_queue();
        if out.is_empty() {
            return Ok(());
        }
        match site.publish(out.iter().cloned()).await {
            Ok(_) => Ok(()),
            Err(e) => {
                self.requeue(out);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::time::Duration;

    fn demo() -> Scenario {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../fixtures/scenarios/helsinki-storm");
        Scenario::load(&dir).expect("the demo loads")
    }

    fn clock() -> TrainerClock {
        let scenario = demo();
        let start = scenario.manifest.start_ms;
        TrainerClock::new("hel-ex1".parse().unwrap(), scenario, "trainer", start)
    }

    /// What the queue holds, as kinds: `tick`, `feed` or `ops`.
    fn kinds(out: &[Outgoing]) -> Vec<&'static str> {
        out.iter()
            .map(|o| {
                if o.subject.contains(".ops.") {
                    "ops"
                } else if o.subject.ends_with(".clock") {
                    "tick"
                } else {
                    "feed"
                }
            })
            .collect()
    }

    #[test]
    fn a_paused_clock_publishes_nothing_and_a_playing_one_runs_at_its_speed() {
        let mut c = clock();
        let t0 = Instant::now();
        c.advance(t0);
        c.advance(t0 + Duration::from_secs(30));
        assert!(c.take_queue().is_empty(), "a paused clock stands");
        let start = c.state().at_ms;
        c.set_speed("Tia", 10.0, t0 + Duration::from_secs(30), 0).unwrap();
        c.set_playing("Tia", true, t0 + Duration::from_secs(30), 0);
        assert_eq!(kinds(&c.take_queue()), ["ops", "ops"], "each control is one event");
        // Two seconds of real time at ten times is twenty seconds of the scenario.
        c.advance(t0 + Duration::from_secs(32));
        assert_eq!(c.state().at_ms, start + 20_000);
        let out = c.take_queue();
        assert_eq!(
            kinds(&out).iter().filter(|k| **k == "tick").count(),
            20,
            "{:?}",
            kinds(&out)
        );
        // A link that is down holds the clock: no time passes for the trainees.
        c.hold(t0 + Duration::from_secs(60));
        c.advance(t0 + Duration::from_secs(60));
        assert_eq!(c.state().at_ms, start + 20_000);
    }

    #[test]
    fn a_seek_goes_ahead_with_what_lies_between_and_never_back() {
        let mut c = clock();
        let t0 = Instant::now();
        let start = c.state().at_ms;
        let lines = c
            .scenario()
            .messages
            .iter()
            .filter(|m| m.time_ms <= start + 750_000)
            .count();
        c.seek("Tia", start + 750_000, t0, 0).unwrap();
        let out = c.take_queue();
        let k = kinds(&out);
        assert_eq!(k.iter().filter(|k| **k == "feed").count(), lines);
        assert_eq!(k.iter().filter(|k| **k == "tick").count(), 750);
        assert_eq!(k.last(), Some(&"ops"), "the seek is said after what it passed");
        // The ticks and lines are in the scenario's order.
        let times: Vec<i64> = out
            .iter()
            .filter(|o| o.subject.ends_with(".clock") && !o.subject.contains(".ops."))
            .map(|o| {
                serde_json::from_slice::<cityops_site::Tick>(&o.payload)
                    .unwrap()
                    .time_ms
            })
            .collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]));
        assert!(matches!(c.seek("Tia", start, t0, 0), Err(ClockRefusal::Back)));
        assert!(c.take_queue().is_empty(), "a refused seek publishes nothing");
        // Past the end, the clock stops at the end.
        c.seek("Tia", Millis::MAX / 2, t0, 0).unwrap();
        assert!(c.finished());
        assert!(matches!(c.set_speed("Tia", 0.0, t0, 0), Err(ClockRefusal::Speed(_))));
    }

    #[test]
    fn what_a_publish_left_goes_out_again_first() {
        let mut c = clock();
        let t0 = Instant::now();
        c.set_playing("Tia", false, t0, 1);
        let first = c.take_queue();
        c.set_playing("Tia", true, t0, 2);
        c.requeue(first.clone());
        let again = c.take_queue();
        assert_eq!(again.len(), 2);
        assert_eq!(
            again[0].id, first[0].id,
            "the same message id, which the stream de-duplicates"
        );
    }

    #[test]
    fn injects_are_numbered_after_the_stream_and_refused_outside_the_palette() {
        let mut c = clock();
        let t0 = Instant::now();
        c.note_position(41);
        let a = c.inject("Tia", "citizen-report", 24.9445, 60.1745, t0).unwrap();
        let b = c.inject("Tia", "citizen-report", 24.9445, 60.1745, t0).unwrap();
        assert_eq!((a.n, b.n), (42, 43));
        assert_eq!(a.entity, "inject/42");
        c.note_position(10);
        assert_eq!(
            c.inject("Tia", "citizen-report", 24.9, 60.1, t0).unwrap().n,
            44,
            "never back"
        );
        assert!(matches!(
            c.inject("Tia", "meteor", 24.9, 60.1, t0),
            Err(ClockRefusal::NoInject(_))
        ));
        let out = c.take_queue();
        assert_eq!(kinds(&out), ["feed", "feed", "feed"]);
        assert!(
            String::from_utf8_lossy(&out[0].payload).contains("Tia"),
            "the inject names its trainer"
        );
    }
}
