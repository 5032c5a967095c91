import test from 'ava';
import { compilePatterns } from '../src/rpc/patterns.js';

test('wildcards: `files.*` covers files.read and files.dir.list but not filesystem or files', (t) => {
  const m = compilePatterns(['files.*']);
  t.true(m('files.read'));
  t.true(m('files.dir.list'));
  t.false(m('files'));
  t.false(m('filesystem.read'));
  t.false(m('xfiles.read'));
  const literal = compilePatterns(['a.b', 'a+b']);
  t.true(literal('a.b'));
  t.false(literal('axb'), 'dots are literal');
  t.true(literal('a+b'));
  t.true(compilePatterns(['*'])('anything.at.all'));
  t.false(compilePatterns([])('x'));
});
