/** Emulator faults for the length of one test. */
import type { Emulator, EmulatorFaults } from '../../src/emulator/index.js';

/** Runs `body` with `faults` switched on, then puts back the faults the emulator had before. */
export async function withFaults<T>(
  emu: Emulator,
  faults: Partial<EmulatorFaults>,
  body: () => Promise<T>,
): Promise<T> {
  const before = emu.faults();
  emu.setFaults(faults);
  try {
    return await body();
  } finally {
    emu.setFaults(before);
  }
}
