// Pure helpers of the demo page: number formatting, readable errors, model-choice validation.
import { describe, expect, it } from 'vitest';
import { describeError, formatBytes, formatMs, formatRate } from '../demo/format.ts';
import { modelSourceFor } from '../demo/model-choice.ts';
import { BadInputError, UnsupportedError } from '../src/gpu/errors.ts';

describe('demo formatting', () => {
  it('formats times, rates and sizes', () => {
    expect(formatMs(0.5)).toBe('0.50 ms');
    expect(formatMs(12.4)).toBe('12 ms');
    expect(formatMs(1530)).toBe('1.53 s');
    expect(formatMs(125_000)).toBe('2 min 5 s');
    expect(formatMs(119_700)).toBe('2 min 0 s');
    expect(formatMs(22_823_000)).toBe('6 h 20 min');
    expect(formatRate(1234.5, 'tok/s')).toBe('1,235 tok/s');
    expect(formatRate(1.981, 'tok/s')).toBe('1.98 tok/s');
    expect(formatBytes(34_289_984)).toBe('32.7 MiB');
    expect(formatMs(Number.NaN)).toBe('–');
  });

  it('describes typed errors by class and code, others by name', () => {
    expect(describeError(new UnsupportedError('architecture X is not supported'))).toEqual({ title: 'UnsupportedError (UNSUPPORTED)', detail: 'architecture X is not supported' });
    expect(describeError(new TypeError('bad'))).toEqual({ title: 'TypeError', detail: 'bad' });
    expect(describeError('plain')).toEqual({ title: 'Error', detail: 'plain' });
  });
});

describe('demo model choice', () => {
  it('rejects a missing folder or URL with a BadInputError that says what to do', () => {
    expect(() => modelSourceFor({ kind: 'folder', files: [] }, 'http://localhost/')).toThrow(BadInputError);
    expect(() => modelSourceFor({ kind: 'url', url: '  ' }, 'http://localhost/')).toThrow(/no model URL given/);
    expect(() => modelSourceFor({ kind: 'url', url: 'ftp://x/y' }, 'http://localhost/')).toThrow(/http\(s\)/);
  });

  it('resolves relative URLs against the page', () => {
    expect(modelSourceFor({ kind: 'default', url: '/.fixtures/default-model' }, 'http://localhost:5173/demo/').name).toBe('http://localhost:5173/.fixtures/default-model');
    expect(modelSourceFor({ kind: 'url', url: 'https://example.org/m/' }, 'http://localhost/').name).toBe('https://example.org/m');
  });
});
