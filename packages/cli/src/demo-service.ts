/** The typed service the demo serves: a tiny notes store plus an admin method the client may not call. */

/** Methods → (params) => result; types both `handle` and `request` with no code generation. */
export interface NotesService {
  'notes.add': (params: { text: string }) => { id: number };
  'notes.list': (params: null) => string[];
  'admin.wipe': (params: null) => { wiped: number };
}
