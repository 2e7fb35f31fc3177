// Who holds control of the session's app, in words: for the call's header, the app's tile and
// the people list.

/** @typedef {import('../room.js').RoomSession} RoomSession */

/**
 * @typedef {object} ControlState
 * @property {'you' | 'other' | 'none' | 'stopped'} state
 * @property {string} key translation key saying so
 * @property {Record<string, string>} [args]
 */

/**
 * @param {RoomSession} session
 * @returns {ControlState}
 */
export function controlState(session) {
  if (session.appStopped !== null) return { state: 'stopped', key: 'control.stopped' };
  const holder = session.controlHolder;
  if (!holder) return { state: 'none', key: 'control.nobody' };
  if (holder === session.selfId) return { state: 'you', key: 'control.you' };
  return { state: 'other', key: 'control.other', args: { name: session.nameOf(holder) } };
}
