/**
 * The `backbone` field of a training config: a backbone plugin's options, plus `pretrained`, a
 * file whose weights the run starts from (a PyTorch state_dict or an @fr checkpoint; see
 * import.ts). `pretrained` belongs to the run, not to the architecture, so the plugin never sees it.
 */
import { pluginUnion, z } from '@fr/core';
import type { Plugins } from './plugins.js';

export function backboneField(plugins: Plugins) {
  const union = pluginUnion('backbone', plugins.backbones);
  return z
    .object({
      pretrained: z.string().min(1).optional()
        .describe('weights to start from: a PyTorch state_dict (.pth, .pt; insightface names), an @fr checkpoint (.safetensors) or run folder'),
    })
    .catchall(z.unknown())
    .transform((value, ctx) => {
      const { pretrained, ...rest } = value;
      const r = union.safeParse(rest);
      if (!r.success) {
        for (const issue of r.error.issues) ctx.addIssue({ code: 'custom', path: issue.path as (string | number)[], message: issue.message });
        return z.NEVER;
      }
      return pretrained === undefined ? r.data : { ...r.data, pretrained };
    });
}
