// The parts of tap's `t` that the helpers take.
import type tap from 'tap'

/** The `t` of a tap subtest. */
export type Tap = Parameters<Parameters<typeof tap.test>[0]>[0]

/** What a helper needs from tap's `t`: somewhere to put cleanups. */
export interface Teardown { teardown: (fn: () => unknown) => void }
