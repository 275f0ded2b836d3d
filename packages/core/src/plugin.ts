/**
 * The mark `defineLoss` and `defineBackbone` put on what they make, so a program importing a plugin module
 * finds its losses and backbones by what made them, not by an export's shape or name. A registered symbol,
 * so objects made by another copy of @fr/core are recognised too.
 */
const PLUGIN_KIND = Symbol.for('@fr/core.plugin-kind');

/** What a define* function made. */
export type PluginKind = 'loss' | 'backbone';

/**
 * Marks a plugin object with its kind and returns it. The mark is a non-enumerable property, so it
 * changes neither the object's keys nor its JSON; a frozen object is wrapped in a marked object
 * whose prototype it is, so every field still reads through.
 */
export function markPlugin<T extends object>(plugin: T, kind: PluginKind): T {
  if ((plugin as Record<symbol, unknown>)[PLUGIN_KIND] === kind) return plugin;
  const target = Object.isExtensible(plugin) ? plugin : (Object.create(plugin) as T);
  Object.defineProperty(target, PLUGIN_KIND, { value: kind, enumerable: false, configurable: false, writable: false });
  return target;
}

/** The kind a define* function marked `value` with, or null for anything else. */
export function pluginKind(value: unknown): PluginKind | null {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return null;
  const kind = (value as Record<symbol, unknown>)[PLUGIN_KIND];
  return kind === 'loss' || kind === 'backbone' ? kind : null;
}
