// What the page knows, shared by the modules that render it.

export const state = {
  me: null,
  flags: null,
  usage: null,
  audit: null,
  window: '24h',
  // The operator edited phase or rollout: periodic refreshes must not
  // overwrite what they are about to submit.
  formDirty: false,
};

// registeredIds are the clients the flags know, sorted.
export function registeredIds() {
  return Object.keys((state.flags && state.flags.effective) || {}).sort();
}
