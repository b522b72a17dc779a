/**
 * k-way merge of lists that are each already sorted (newest first), stopping at `limit`: the gather half
 * of scatter-gather. Each shard returns at most `limit` rows (the limit is pushed down), so the merge
 * touches at most k × limit rows and returns the global top `limit`. k is the shard count (small), so a
 * linear scan of the k heads is simpler than a heap and just as fast.
 */
export function kWayMerge<T>(lists: T[][], compare: (a: T, b: T) => number, limit: number): T[] {
  const heads = lists.map(() => 0);
  const out: T[] = [];
  while (out.length < limit) {
    let best = -1;
    for (let i = 0; i < lists.length; i++) {
      if (heads[i] >= lists[i].length) continue;
      if (best < 0 || compare(lists[i][heads[i]], lists[best][heads[best]]) < 0) best = i;
    }
    if (best < 0) break;
    out.push(lists[best][heads[best]++]);
  }
  return out;
}
