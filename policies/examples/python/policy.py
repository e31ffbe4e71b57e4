"""even-spread: the example placement policy in Python (the same algorithm as
policies/examples/rust; docs/sdk.md). componentize-py generates the `wit_world` bindings
from the WIT and bundles CPython; build.sh makes the component.

One replica at a time, round robin over the ready fog clusters with free slots (name
order), each up to its slots and to the `maxPerCluster` parameter; what the fog cannot
hold goes to the cheapest ready cloud cluster; what is left is unplaced.
"""

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types
from wit_world.imports.types import Health, Role

# The fleet of this cycle, kept from set-fleet for every place.
_fleet = None


def _max_per_cluster(w):
    for key, value in w.params:
        if key == "maxPerCluster":
            try:
                n = int(value.strip())
            except ValueError:
                n = 0
            if n < 1:
                raise Err("parameter maxPerCluster must be an integer of at least 1")
            return n
    return None


class Placer(exports.Placer):
    def info(self):
        return types.PolicyInfo(
            name="even-spread",
            description="Round robin over ready fog clusters with free slots, overflow to the cheapest ready cloud.",
            parameters=["maxPerCluster: most replicas on one fog cluster (default: no limit)"],
        )

    def set_fleet(self, fleet):
        global _fleet
        _fleet = fleet

    def place(self, w):
        if _fleet is None:
            raise Err("place called before set-fleet")
        cap = _max_per_cluster(w)
        clusters = _fleet.clusters
        slots = lambda c: w.slots[c] if c < len(w.slots) else 0
        fog = [c for c, cl in enumerate(clusters)
               if cl.role == Role.FOG and cl.health == Health.READY and slots(c) > 0]
        room = [min(slots(c), cap) if cap is not None else slots(c) for c in fog]
        share = [0] * len(fog)
        left = w.total
        while left > 0:
            before = left
            for i in range(len(fog)):
                if left > 0 and share[i] < room[i]:
                    share[i] += 1
                    left -= 1
            if left == before:
                break
        choices = {}
        for c, n in zip(fog, share):
            if n > 0:
                choices[c] = types.Choice(
                    cluster=c, replicas=n,
                    reason=f"fog: {n} of {slots(c)} free slots, round robin over {len(fog)} clusters")
        clouds = [c for c, cl in enumerate(clusters) if cl.role == Role.CLOUD and cl.health == Health.READY]
        if clouds and left > 0:
            cloud = min(clouds, key=lambda c: (clusters[c].cost, c))
            choices[cloud] = types.Choice(
                cluster=cloud, replicas=left,
                reason=f"cloud: {left} the fog clusters could not hold (cheapest ready cloud)")
            left = 0
        return types.Decision(
            choices=[choices[c] for c in sorted(choices)],
            unplaced=left,
            summary=f"even-spread: {w.total - left} placed, {left} unplaced",
        )
