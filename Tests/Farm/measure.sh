# bench/farm's figures, sourced by three-nodes.sh (FARM3_MEASURE=1) once its farm delivers, every
# node at marker 2; it leaves them so, the three nodes in the farm. Prints MEASURE lines; asserts
# nothing.
# 1. The time during which the nodes serve different code at a restore, each node asked directly
#    every ~2 ms (goal <= 100 ms).
# 2. The farm's run-all against one node's, the three nodes sharing this machine's cores, and
#    against the three nodes' own run-alls started at once (the same work, uncoordinated).
# 3. The issue's comparison (goal <= 1.3x): each node on a core of its own, as separate machines
#    would be (taskset: its nginx, sshd, PHP-FPM pool and helper, and all they start; the
#    coordinator's deliveryctl with its node), as many nodes as the machine has cores (web3 leaves
#    the farm for it on a 2-core machine, by the setup as an admin would), three runs each.

publish_marker 21
for i in 1 2 3; do
  (while :; do printf '%s %s\n' "$(date +%s.%N)" "$(curl -s -m 1 "http://$net.1$i/farm-marker.php")"; sleep 0.002; done \
    >"$work/poll$i.txt") &
  pollers[$i]=$!
done
sleep 0.5
on 1 "$deliveryctl" farm run-all --site school >"$work/measure-skew.log" 2>&1
sleep 0.5
kill "${pollers[@]}" 2>/dev/null
wait "${pollers[@]}" 2>/dev/null
firsts=$(for i in 1 2 3; do grep -m1 "marker 21" "$work/poll$i.txt" | cut -d' ' -f1; done)
lasts_old=$(for i in 1 2 3; do grep "marker 2$" "$work/poll$i.txt" | tail -1 | cut -d' ' -f1; done)
skew=$(printf '%s\n' $firsts | sort -n | sed -n '1p;$p' | tr '\n' ' ' | awk '{printf "%.0f", ($2 - $1) * 1000}')
mixed=$(awk -v a="$(printf '%s\n' $firsts | sort -n | head -1)" -v b="$(printf '%s\n' $lasts_old | sort -n | tail -1)" \
  'BEGIN { d = (b - a) * 1000; printf "%.0f", (d > 0 ? d : 0) }')
samples=$(cat "$work"/poll{1,2,3}.txt | wc -l)
echo "MEASURE switch skew at the restore (first to last node serving the new code): ${skew} ms (goal <= 100 ms; $samples samples)"
echo "MEASURE time some node served the old code after another served the new: ${mixed} ms"

# The farm's time against one node's, without the pollers: each run's wall time, and the CPU
# time the whole machine spent meanwhile (/proc/stat).
busy() { awk '/^cpu / { printf "%.2f", ($2 + $3 + $4 + $7 + $8) / 100 }' /proc/stat; }
timed() { # timed NAME COMMAND...: sets NAME_seconds and NAME_cpu
  local name=$1 started cpu ended=0
  shift
  cpu=$(busy)
  started=$(date +%s.%N)
  "$@" >"$work/measure-$name.log" 2>&1 || ended=$?
  printf -v "${name}_seconds" '%.2f' "$(echo "$(date +%s.%N) - $started" | bc)"
  printf -v "${name}_cpu" '%.2f' "$(echo "$(busy) - $cpu" | bc)"
  return "$ended"
}
ratio() { echo "scale=2; $1 / $2" | bc; }
marker=30
next_marker() { marker=$((marker + 1)); publish_marker "$marker"; }
# apart N CPU…: nodes 1..N's own run-alls, all at once, node i's on the i-th CPU given (or unpinned).
apart() {
  local n=$1 i s=0 p pids=()
  shift
  for ((i = 1; i <= n; i++)); do
    if (($#)); then on "$i" taskset -c "${!i}" "$deliveryctl" run-all --site school & else on "$i" "$deliveryctl" run-all --site school & fi
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || s=1; done
  return "$s"
}

cores=$(nproc)
next_marker
timed farm on 1 "$deliveryctl" farm run-all --site school
next_marker
timed single on 1 "$deliveryctl" run-all --site school
next_marker
timed shared apart 3 || echo "MEASURE warning: a node's own run-all failed"
on 1 "$deliveryctl" farm recover --site school >"$work/measure-recover.log" 2>&1
echo "MEASURE the three nodes sharing this machine's $cores cores: farm run-all ${farm_seconds} s (CPU ${farm_cpu} s); run-all on one node: ${single_seconds} s (CPU ${single_cpu} s), ratio $(ratio "$farm_seconds" "$single_seconds"); the three nodes' own run-alls at once (no coordination, the same cores): ${shared_seconds} s (CPU ${shared_cpu} s), farm against that $(ratio "$farm_seconds" "$shared_seconds")"
every_node_serves "marker $marker" || echo "MEASURE warning: the nodes are not in line after their own run-alls"

# pin N CPUS: node N's processes (its namespace's nginx and sshd, its PHP-FPM pool, its helper) on
# those CPUs; what they start from now on (the farm's ssh and follow, git, php, copies) inherits it.
tree_pids() { local c; echo "$1"; for c in $(pgrep -P "$1"); do tree_pids "$c"; done; }
pin() {
  local pid count=0
  for pid in $(ip netns pids "n3n$suffix$1") $(tree_pids "$(cat "$work/n$1/fpm.pid")") \
    $(tree_pids "$(cat "$work/run$1/school/deliveryd.pid")"); do
    taskset -a -p -c "$2" "$pid" >/dev/null 2>&1 && count=$((count + 1))
  done
  echo "web$1 on CPU $2 ($count processes)"
}
nodes=$((cores < 3 ? cores : 3))
if ((nodes < 2)); then
  echo "MEASURE each node on a core of its own: needs 2 cores, this machine has $cores"
else
  if ((nodes == 2)); then
    setup_node 1 --farm-node "web2=$(addr 2)" || echo "MEASURE warning: web3 could not leave the farm"
  fi
  placed=$(for ((i = 1; i <= nodes; i++)); do pin "$i" $((i - 1)); done | paste -sd, | sed 's/,/, /g')
  cpus=($(seq 0 $((nodes - 1))))
  farms=() singles=() aparts=()
  for round in 1 2 3; do
    next_marker
    timed farm on 1 taskset -c 0 "$deliveryctl" farm run-all --site school || echo "MEASURE warning: the farm run-all failed"
    farms+=("$farm_seconds")
    next_marker
    timed single on 1 taskset -c 0 "$deliveryctl" run-all --site school
    singles+=("$single_seconds")
    next_marker
    timed own apart "$nodes" "${cpus[@]}" || echo "MEASURE warning: a node's own run-all failed"
    aparts+=("$own_seconds")
    on 1 "$deliveryctl" farm recover --site school >"$work/measure-recover.log" 2>&1
  done
  median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
  farm_median=$(median "${farms[@]}") single_median=$(median "${singles[@]}") apart_median=$(median "${aparts[@]}")
  echo "MEASURE each node on a core of its own ($placed; PostgreSQL and the balancer unpinned), three runs each:"
  echo "MEASURE   farm run-all, $nodes nodes: ${farms[*]} s; run-all on one node: ${singles[*]} s; ratio of the medians $(ratio "$farm_median" "$single_median") (goal <= 1.3)"
  echo "MEASURE   the $nodes nodes' own run-alls at once (no coordination): ${aparts[*]} s; farm against that $(ratio "$farm_median" "$apart_median")"
  for ((i = 1; i <= nodes; i++)); do pin "$i" "0-$((cores - 1))" >/dev/null; done
  if ((nodes == 2)); then
    setup_node 1 --farm-node "web2=$(addr 2)" --farm-node "web3=$(addr 3)" || echo "MEASURE warning: web3 could not come back to the farm"
  fi
fi
sed 's/^/MEASURE   | /' "$work/measure-farm.log"
publish_marker 2
on 1 "$deliveryctl" farm run-all --site school >"$work/measure-back.log" 2>&1
every_node_serves "marker 2" || echo "MEASURE warning: the three nodes are not back at marker 2"
