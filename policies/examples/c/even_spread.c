// even-spread: the example placement policy in C (the same algorithm as
// policies/examples/rust; docs/sdk.md). Bindings come from `wit-bindgen c`; build.sh links
// with wasi-libc and wraps the module as a component.
//
// One replica at a time, round robin over the ready fog clusters with free slots (name
// order), each up to its slots and to the `maxPerCluster` parameter; what the fog cannot
// hold goes to the cheapest ready cloud cluster; what is left is unplaced.
//
// Ownership (canonical ABI): arguments belong to the callee and are freed with the
// generated *_free functions; returned strings and lists must be malloc'ed, the generated
// post-return functions free them. No stdio: it would import WASI.

#include "placement.h"
#include <stdlib.h>
#include <string.h>

typedef mck8s_policy_types_fleet_t fleet_t;
typedef mck8s_policy_types_workload_t workload_t;
typedef mck8s_policy_types_decision_t decision_t;
typedef mck8s_policy_types_choice_t choice_t;

// The fleet of this cycle: set-fleet keeps it, the next set-fleet frees it.
static fleet_t fleet;
static bool have_fleet = false;

static void set_string(placement_string_t *s, const char *text) {
  placement_string_dup(s, text);
}

// Appends `n` in decimal to buf (at least 11 bytes free).
static char *put_u32(char *buf, uint32_t n) {
  char tmp[10];
  int i = 0;
  do {
    tmp[i++] = (char)('0' + n % 10);
    n /= 10;
  } while (n > 0);
  while (i > 0) *buf++ = tmp[--i];
  *buf = 0;
  return buf;
}

static char *put_str(char *buf, const char *s) {
  size_t n = strlen(s);
  memcpy(buf, s, n + 1);
  return buf + n;
}

void exports_mck8s_policy_placer_info(mck8s_policy_types_policy_info_t *ret) {
  set_string(&ret->name, "even-spread");
  set_string(&ret->description,
             "Round robin over ready fog clusters with free slots, overflow to the cheapest ready cloud.");
  ret->parameters.len = 1;
  ret->parameters.ptr = malloc(sizeof(placement_string_t));
  set_string(&ret->parameters.ptr[0], "maxPerCluster: most replicas on one fog cluster (default: no limit)");
}

bool exports_mck8s_policy_placer_set_fleet(fleet_t *f, placement_string_t *err) {
  (void)err;
  if (have_fleet) mck8s_policy_types_fleet_free(&fleet);
  fleet = *f;  // take ownership: no copy
  have_fleet = true;
  return true;
}

// Parameter `maxPerCluster`: 0 when absent, -1 when malformed or 0.
static int64_t max_per_cluster(const workload_t *w) {
  static const char key[] = "maxPerCluster";
  for (size_t i = 0; i < w->params.len; i++) {
    placement_string_t *k = &w->params.ptr[i].f0, *v = &w->params.ptr[i].f1;
    if (k->len != sizeof key - 1 || memcmp(k->ptr, key, k->len) != 0) continue;
    int64_t n = 0;
    size_t j = 0;
    while (j < v->len && v->ptr[j] == ' ') j++;
    if (j == v->len) return -1;
    for (; j < v->len && v->ptr[j] != ' '; j++) {
      if (v->ptr[j] < '0' || v->ptr[j] > '9' || n > 0xFFFFFFFFll) return -1;
      n = n * 10 + (v->ptr[j] - '0');
    }
    while (j < v->len && v->ptr[j] == ' ') j++;
    return (j == v->len && n >= 1 && n <= 0xFFFFFFFFll) ? n : -1;
  }
  return 0;
}

static uint32_t slots_of(const workload_t *w, uint32_t c) {
  return c < w->slots.len ? w->slots.ptr[c] : 0;
}

bool exports_mck8s_policy_placer_place(workload_t *w, decision_t *ret, placement_string_t *err) {
  if (!have_fleet) {
    set_string(err, "place called before set-fleet");
    mck8s_policy_types_workload_free(w);
    return false;
  }
  int64_t cap = max_per_cluster(w);
  if (cap < 0) {
    set_string(err, "parameter maxPerCluster must be an integer of at least 1");
    mck8s_policy_types_workload_free(w);
    return false;
  }
  size_t n = fleet.clusters.len;
  mck8s_policy_types_cluster_t *cl = fleet.clusters.ptr;
  uint32_t *share = calloc(n ? n : 1, sizeof(uint32_t));
  uint32_t fog = 0;
  for (size_t c = 0; c < n; c++)
    if (cl[c].role == MCK8S_POLICY_TYPES_ROLE_FOG && cl[c].health == MCK8S_POLICY_TYPES_HEALTH_READY && slots_of(w, c) > 0)
      fog++;

  // Round robin, one replica per eligible fog cluster per pass.
  uint32_t left = w->total;
  while (left > 0) {
    uint32_t before = left;
    for (size_t c = 0; c < n && left > 0; c++) {
      if (cl[c].role != MCK8S_POLICY_TYPES_ROLE_FOG || cl[c].health != MCK8S_POLICY_TYPES_HEALTH_READY) continue;
      uint32_t room = slots_of(w, c);
      if (cap > 0 && (int64_t)room > cap) room = (uint32_t)cap;
      if (share[c] < room) {
        share[c]++;
        left--;
      }
    }
    if (left == before) break;
  }

  // The cheapest ready cloud takes the rest; fleet order breaks ties.
  int64_t cloud = -1;
  for (size_t c = 0; c < n; c++)
    if (cl[c].role == MCK8S_POLICY_TYPES_ROLE_CLOUD && cl[c].health == MCK8S_POLICY_TYPES_HEALTH_READY &&
        (cloud < 0 || cl[c].cost < cl[cloud].cost))
      cloud = (int64_t)c;
  if (cloud >= 0 && left > 0) {
    share[cloud] = left;
    left = 0;
  }

  size_t chosen = 0;
  for (size_t c = 0; c < n; c++) chosen += share[c] > 0;
  ret->choices.len = chosen;
  ret->choices.ptr = malloc((chosen ? chosen : 1) * sizeof(choice_t));
  char buf[160];
  size_t k = 0;
  for (size_t c = 0; c < n; c++) {
    if (share[c] == 0) continue;
    choice_t *ch = &ret->choices.ptr[k++];
    ch->cluster = (uint32_t)c;
    ch->replicas = share[c];
    char *p = buf;
    if ((int64_t)c == cloud) {
      p = put_str(p, "cloud: ");
      p = put_u32(p, share[c]);
      put_str(p, " the fog clusters could not hold (cheapest ready cloud)");
    } else {
      p = put_str(p, "fog: ");
      p = put_u32(p, share[c]);
      p = put_str(p, " of ");
      p = put_u32(p, slots_of(w, c));
      p = put_str(p, " free slots, round robin over ");
      p = put_u32(p, fog);
      put_str(p, " clusters");
    }
    set_string(&ch->reason, buf);
  }
  ret->unplaced = left;
  char *p = put_str(buf, "even-spread: ");
  p = put_u32(p, w->total - left);
  p = put_str(p, " placed, ");
  p = put_u32(p, left);
  put_str(p, " unplaced");
  set_string(&ret->summary, buf);
  free(share);
  mck8s_policy_types_workload_free(w);
  return true;
}
