/** Learning-rate schedules: pure functions of the step, so a resumed run gets the same rates. */
import { z } from './schema.js';

/** Maps a 0-based step to a learning rate. */
export type Schedule = (step: number) => number;

const warmup = z.number().int().min(0).default(0).describe('linear warmup steps from 0 to the base rate');

export const scheduleSchema = z.discriminatedUnion('name', [
  z.object({ name: z.literal('constant'), warmupSteps: warmup }),
  z.object({
    name: z.literal('step'),
    warmupSteps: warmup,
    milestones: z.array(z.number().int().positive()).default([]).describe('steps at which the rate is multiplied by gamma'),
    gamma: z.number().positive().default(0.1).describe('factor applied at each milestone'),
  }),
  z.object({
    name: z.literal('cosine'),
    warmupSteps: warmup,
    minLr: z.number().min(0).default(0).describe('rate at the last step'),
  }),
  z.object({
    name: z.literal('poly'),
    warmupSteps: warmup,
    power: z.number().positive().default(2).describe('exponent of the polynomial decay (insightface uses 2)'),
  }),
]);

export type ScheduleConfig = z.infer<typeof scheduleSchema>;

/** Builds the schedule a config describes for a run of `totalSteps` at `baseLr`. */
export function createSchedule(config: ScheduleConfig, baseLr: number, totalSteps: number): Schedule {
  const w = config.warmupSteps;
  const afterWarmup = scheduleShapes[config.name] as (c: ScheduleConfig, base: number, t: number, total: number) => number;
  return (step) => {
    if (step < w) return (baseLr * (step + 1)) / w;
    const span = Math.max(1, totalSteps - w);
    return afterWarmup(config, baseLr, Math.min(step - w, span), span);
  };
}

/** Rate after warmup, by schedule name; t runs from 0 to total. */
const scheduleShapes: {
  [K in ScheduleConfig['name']]: (c: Extract<ScheduleConfig, { name: K }>, base: number, t: number, total: number) => number;
} = {
  constant: (_c, base) => base,
  // Milestones count steps from the start of the run, warmup included (as MultiStepLR does).
  step: (c, base, t) => base * c.gamma ** c.milestones.filter((m) => t + c.warmupSteps >= m).length,
  cosine: (c, base, t, total) => c.minLr + (base - c.minLr) * 0.5 * (1 + Math.cos((Math.PI * t) / total)),
  poly: (c, base, t, total) => base * (1 - t / total) ** c.power,
};
