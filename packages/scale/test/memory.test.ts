import { createCpuBackend } from '@fr/backend-cpu';
import { describe, expect, it } from 'vitest';
import { assertFits, deviceLimits, formatBytes, MemoryPlanError, planMemory, proposeFit, type MemoryConfig } from '../src/index.js';

// C 1000, D 4, B 10, P 100, SGD momentum, float32, one device. By hand:
//   backbone 2*100*4 = 800; class weights 2*1000*4*4 = 32,000; optimizer 4*(100 + 4000) = 16,400;
//   activations 1000; logits + gradient 2*10*1000*4 = 80,000; workspace (4+4+4)*1000*4 = 48,000;
//   total 178,200; largest buffer the logits, 10*1000*4 = 40,000.
const base: MemoryConfig = {
  numClasses: 1000, embeddingDim: 4, batch: 10, backboneParams: 100, activationBytes: 1000, optimizer: 'sgd-momentum',
};

describe('planMemory', () => {
  it('one device, float32, SGD momentum', () => {
    const p = planMemory(base);
    expect(p.devices).toHaveLength(1);
    expect(p.devices[0]).toMatchObject({
      backbone: 800, classWeights: 32_000, optimizerState: 16_400, activations: 1000, lossHead: 80_000, headWorkspace: 48_000,
      total: 178_200, classes: 1000, sampledClasses: 1000,
      largestBuffer: { name: 'logits of the shard (B x sampled classes)', bytes: 40_000 },
    });
    expect(p.fits).toBe(true);
  });

  it('two shards, AdamW, Partial FC 0.1, float16 storage', () => {
    // C_s = 500; S = max(floor(0.1*500), min(10, 500)) = 50.
    // device 0: 800 + 2*500*4*4 (16,000) + 2*4*(100 + 2000) (16,800) + 1000 + 2*10*50*4 (4000)
    //           + (4+4+4+4)*50*4 (3200) = 41,800; device 1: 16,000 + 16,000 + 4000 + 3200 = 39,200.
    // float16 storage does not lower the peak: the backward recomputes the float32 rows.
    const p = planMemory({ ...base, optimizer: 'adamw', shards: 2, sampleRate: 0.1, weightDtype: 'float16' });
    expect(planMemory({ ...base, optimizer: 'adamw', shards: 2, sampleRate: 0.1 })).toEqual(p);
    expect(p.devices.map((d) => d.total)).toEqual([41_800, 39_200]);
    expect(p.devices[1]).toMatchObject({ backbone: 0, activations: 0, optimizerState: 16_000, sampledClasses: 50 });
    expect(p.totals).toMatchObject({ classWeights: 32_000, optimizerState: 32_800, lossHead: 8000, headWorkspace: 6400, total: 81_000 });
    expect(p.devices[0].largestBuffer).toEqual({ name: 'class weights of the shard', bytes: 8000 });
  });

  it('float16 logits halve the loss head and its largest buffer', () => {
    // logits + gradient 2*10*1000*2 = 40,000 instead of 80,000; total 138,200; the largest buffer is
    // still the logits' 20,000 (the class weights are 1000*4*4 = 16,000).
    const p = planMemory({ ...base, logitDtype: 'float16' });
    expect(p.devices[0]).toMatchObject({ lossHead: 40_000, total: 138_200, largestBuffer: { name: 'logits of the shard (B x sampled classes)', bytes: 20_000 } });
    expect(planMemory({ ...base, logitDtype: 'float32' })).toEqual(planMemory(base));
  });

  it('sampling keeps every class of the batch: S is at least min(B, C_s)', () => {
    // C_s = 1000, rate 0.005: budget 5 < B = 10, so S = 10.
    expect(planMemory({ ...base, sampleRate: 0.005 }).devices[0].sampledClasses).toBe(10);
    expect(planMemory({ ...base, optimizer: 'sgd' }).devices[0].optimizerState).toBe(0);
  });

  it('refuses what does not fit and proposes the shard count or rate that would', () => {
    const limits = { maxBufferSize: 20_000, maxStorageBufferBindingSize: 20_000, memoryBudget: 100_000 };
    const p = planMemory(base, limits);
    expect(p.fits).toBe(false);
    expect(p.problems).toEqual([
      'device 0: logits of the shard (B x sampled classes) needs 39.1 KiB, over maxBufferSize 19.5 KiB',
      'device 0: logits of the shard (B x sampled classes) needs 39.1 KiB, over maxStorageBufferBindingSize 19.5 KiB',
      'device 0: needs 174 KiB in total, over the budget of 97.7 KiB',
    ]);
    // K = 2: device 0 = 800 + 16,000 + 8400 + 1000 + 40,000 + 24,000 = 90,200, logits 20,000: fits.
    // Rate 0.3 on one device: S = 300, 800 + 32,000 + 16,400 + 1000 + 24,000 + 19,200 = 93,400 fits;
    // rate 0.4 gives 107,800 and does not.
    expect(proposeFit(base, limits)).toEqual({ shards: 2, sampleRate: 0.3 });
    expect(() => assertFits(base, limits)).toThrow(MemoryPlanError);
    expect(() => assertFits(base, limits)).toThrow(/shards: 2\).*sampleRate: 0\.3/);
    try {
      assertFits(base, limits);
    } catch (e) {
      expect((e as MemoryPlanError).proposal).toEqual({ shards: 2, sampleRate: 0.3 });
    }
    expect(assertFits({ ...base, shards: 2 }, limits).fits).toBe(true);
  });

  it('says when neither shards nor sampling can help', () => {
    // Backbone and activations alone (1800 bytes) exceed the budget of device 0.
    const limits = { maxBufferSize: 1e9, maxStorageBufferBindingSize: 1e9, memoryBudget: 1500 };
    expect(() => assertFits(base, limits)).toThrow(/Neither more shards .* nor a lower sampling rate/);
  });

  it('1M classes x 512 on WebGPU default limits needs 16 shards for the 128 MiB binding limit', () => {
    const cfg: MemoryConfig = {
      numClasses: 1_000_000, embeddingDim: 512, batch: 128, backboneParams: 65_000_000, activationBytes: 2 ** 30, optimizer: 'sgd-momentum',
    };
    const p = planMemory(cfg);
    // One shard: 1e6 x 512 x 4 = 2.048e9 bytes of weights; logits 128 x 1e6 x 4 = 512e6.
    expect(p.devices[0].largestBuffer.bytes).toBe(2_048_000_000);
    expect(p.devices[0].lossHead).toBe(1_024_000_000);
    const webgpuDefaults = { maxBufferSize: 268_435_456, maxStorageBufferBindingSize: 134_217_728, memoryBudget: 24 * 2 ** 30 };
    // 2.048e9 / 16 = 128e6 <= 134,217,728; 15 shards leave 66,667 x 2048 = 136.5e6 bytes.
    expect(proposeFit(cfg, webgpuDefaults).shards).toBe(16);
    expect(proposeFit(cfg, webgpuDefaults).sampleRate).toBeNull();
    const cpu = createCpuBackend();
    expect(deviceLimits(cpu, 24 * 2 ** 30)).toEqual({ maxBufferSize: 2 ** 31, maxStorageBufferBindingSize: 2 ** 31, memoryBudget: 24 * 2 ** 30 });
    expect(assertFits(cfg, deviceLimits(cpu, 24 * 2 ** 30)).fits).toBe(true);
    expect(formatBytes(1536)).toBe('1.50 KiB');
  });
});
