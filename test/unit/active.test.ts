// The resilience layer's list of exchanges in progress (lib/resilience/active.ts):
// close waits for it to empty, destroy ends every entry, the retry budget reads its size.
import t from 'tap'
import { Active, type Linked } from '../../lib/resilience/active.js'

class Entry implements Linked {
  prevActive: Linked | undefined = undefined
  nextActive: Linked | undefined = undefined
  constructor (readonly name: string) {}
}

const names = (list: Active<Entry>): string[] => list.toArray().map((e) => e.name)

/** A list holding an entry per name, added in that order. */
function listOf (...added: string[]): { list: Active<Entry>, entries: Entry[] } {
  const list = new Active<Entry>()
  const entries = added.map((n) => new Entry(n))
  for (const e of entries) list.add(e)
  return { list, entries }
}

t.test('entries leave from the head, the middle and the tail, and the rest stay linked', async (t) => {
  const { list, entries } = listOf('a', 'b', 'c', 'd')
  const [a, b, c, d] = entries as [Entry, Entry, Entry, Entry]
  t.same(names(list), ['d', 'c', 'b', 'a'])
  t.equal(list.size, 4)
  list.delete(c)
  t.same(names(list), ['d', 'b', 'a'], 'from the middle')
  list.delete(d)
  t.same(names(list), ['b', 'a'], 'the head')
  list.delete(a)
  t.same(names(list), ['b'], 'the tail')
  list.delete(b)
  t.same(names(list), [])
  t.equal(list.size, 0)
})

t.test('a second delete, or one of an entry never added, changes nothing', async (t) => {
  const { list, entries: [a] } = listOf('a', 'b')
  list.delete(a!)
  list.delete(a!)
  list.delete(new Entry('stranger'))
  t.same(names(list), ['b'])
  t.equal(list.size, 1)
})

t.test('toArray is a copy: entries may leave while the caller walks it', async (t) => {
  const { list } = listOf('a', 'b', 'c')
  const seen: string[] = []
  for (const e of list.toArray()) {
    seen.push(e.name)
    list.delete(e)
  }
  t.same(seen, ['c', 'b', 'a'])
  t.equal(list.size, 0)
  t.same(names(list), [])
})

t.test('an entry deleted and added again is linked afresh', async (t) => {
  const { list, entries: [a] } = listOf('a', 'b')
  list.delete(a!)
  list.add(a!)
  t.same(names(list), ['a', 'b'])
  t.equal(list.size, 2)
})
