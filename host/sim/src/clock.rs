//! Virtual time: a queue of events ordered by time, then by insertion (so events at the same
//! instant are handled in the order they were scheduled: runs are deterministic).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Event {
    /// Workload `i` (index into the expanded scenario workloads) is created.
    Arrive(usize),
    /// Workload `i` is deleted.
    Depart(usize),
    /// Failure `i` of the scenario starts.
    Fail(usize),
    /// Failure `i` ends.
    Recover(usize),
    /// Nodes being provisioned in cluster `i` may be ready.
    NodeReady(usize),
    /// On-demand cluster `i` has been provisioned and joins the fleet.
    ClusterJoins(usize),
    /// The periodic loop: autoscaler, retries, node autoscaler, sampling.
    Tick,
}

#[derive(Default)]
pub struct Clock {
    queue: BinaryHeap<Reverse<(u64, u64, Event)>>,
    seq: u64,
    now: u64,
}

impl Clock {
    pub fn now(&self) -> u64 {
        self.now
    }

    pub fn at(&mut self, time: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse((time, self.seq, event)));
    }

    /// The next instant with events, if any.
    pub fn peek_time(&self) -> Option<u64> {
        self.queue.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Advances to the next instant and returns all its events, in order.
    pub fn pop_instant(&mut self) -> Option<(u64, Vec<Event>)> {
        let t = self.peek_time()?;
        self.now = t;
        let mut events = Vec::new();
        while let Some(Reverse((tt, _, e))) = self.queue.peek().copied() {
            if tt != t {
                break;
            }
            self.queue.pop();
            events.push(e);
        }
        Some((t, events))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_by_time_then_insertion() {
        let mut c = Clock::default();
        c.at(10, Event::Tick);
        c.at(5, Event::Depart(1));
        c.at(10, Event::Arrive(0));
        c.at(5, Event::Arrive(2));
        assert_eq!(c.pop_instant(), Some((5, vec![Event::Depart(1), Event::Arrive(2)])));
        assert_eq!(c.now(), 5);
        assert_eq!(c.pop_instant(), Some((10, vec![Event::Tick, Event::Arrive(0)])));
        assert_eq!(c.pop_instant(), None);
    }
}
