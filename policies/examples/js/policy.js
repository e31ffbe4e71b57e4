// even-spread: the example placement policy in JavaScript (the same algorithm as
// policies/examples/rust; docs/sdk.md). componentize-js bundles the SpiderMonkey engine;
// build.mjs makes the component. WIT records are plain objects with camelCase fields,
// enums are strings, list<u32> a Uint32Array, u64 a BigInt; a thrown string is the `err`.
//
// One replica at a time, round robin over the ready fog clusters with free slots (name
// order), each up to its slots and to the `maxPerCluster` parameter; what the fog cannot
// hold goes to the cheapest ready cloud cluster; what is left is unplaced.

// The fleet of this cycle, kept from setFleet for every place.
let fleet = null;

function maxPerCluster(w) {
  for (const [key, value] of w.params) {
    if (key !== 'maxPerCluster') continue;
    const text = value.trim();
    const n = /^[0-9]+$/.test(text) ? Number(text) : 0;
    if (n < 1 || n > 0xffffffff) throw 'parameter maxPerCluster must be an integer of at least 1';
    return n;
  }
  return Infinity;
}

export const placer = {
  info() {
    return {
      name: 'even-spread',
      description: 'Round robin over ready fog clusters with free slots, overflow to the cheapest ready cloud.',
      parameters: ['maxPerCluster: most replicas on one fog cluster (default: no limit)'],
    };
  },

  setFleet(f) {
    fleet = f;
  },

  place(w) {
    if (fleet === null) throw 'place called before set-fleet';
    const cap = maxPerCluster(w);
    const clusters = fleet.clusters;
    const slots = (c) => (c < w.slots.length ? w.slots[c] : 0);
    const fog = [];
    clusters.forEach((cl, c) => {
      if (cl.role === 'fog' && cl.health === 'ready' && slots(c) > 0) fog.push(c);
    });
    const room = fog.map((c) => Math.min(slots(c), cap));
    const share = fog.map(() => 0);
    let left = w.total;
    while (left > 0) {
      const before = left;
      for (let i = 0; i < fog.length; i++) {
        if (left > 0 && share[i] < room[i]) {
          share[i]++;
          left--;
        }
      }
      if (left === before) break;
    }
    const choices = [];
    fog.forEach((c, i) => {
      if (share[i] > 0) {
        choices.push({
          cluster: c,
          replicas: share[i],
          reason: `fog: ${share[i]} of ${slots(c)} free slots, round robin over ${fog.length} clusters`,
        });
      }
    });
    let cloud = -1;
    clusters.forEach((cl, c) => {
      if (cl.role === 'cloud' && cl.health === 'ready' && (cloud < 0 || cl.cost < clusters[cloud].cost)) cloud = c;
    });
    if (cloud >= 0 && left > 0) {
      choices.push({
        cluster: cloud,
        replicas: left,
        reason: `cloud: ${left} the fog clusters could not hold (cheapest ready cloud)`,
      });
      left = 0;
    }
    choices.sort((a, b) => a.cluster - b.cluster);
    return { choices, unplaced: left, summary: `even-spread: ${w.total - left} placed, ${left} unplaced` };
  },
};
