/**
 * Yields `fetch(item)` for each item, in order, keeping up to `depth` fetches running ahead of the
 * consumer: the next chunks of a segment arrive while the current one streams, so PostgreSQL's
 * parse never waits for a store round trip. At most depth + 1 results are held at once. A fetch
 * that fails ahead of time fails when its turn comes, not before.
 */
export async function* readAhead<T, R>(
  items: readonly T[],
  depth: number,
  fetch: (item: T) => Promise<R>,
): AsyncGenerator<R> {
  const pending: Array<Promise<R>> = [];
  let next = 0;
  for (;;) {
    // The one to hand over next, and `depth` after it.
    while (next < items.length && pending.length < depth + 1) {
      const fetching = fetch(items[next++]!);
      fetching.catch(() => {}); // observed when its turn comes
      pending.push(fetching);
    }
    const head = pending.shift();
    if (!head) return;
    yield await head;
  }
}
