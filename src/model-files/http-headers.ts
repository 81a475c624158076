// What a download reads from HTTP response headers: sizes, ranges and a sha256 to verify against.

export function nonNegativeInteger(value: string | null): number | undefined {
  if (value === null || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value);
}

/** The size a 200 or 206 response announces for the whole file. */
export function announcedSize(response: Response): number | undefined {
  return response.status === 206 ? contentRange(response)?.size : nonNegativeInteger(response.headers.get('content-length'));
}

/** "bytes START-END/SIZE" or "bytes * /SIZE"; SIZE may be "*" (unknown). */
export function contentRange(response: Response): { start?: number; size?: number } | undefined {
  const match = /^bytes (?:(\d+)-\d+|\*)\/(\d+|\*)$/.exec(response.headers.get('content-range')?.trim() ?? '');
  if (!match) return undefined;
  return { start: match[1] === undefined ? undefined : Number(match[1]), size: match[2] === '*' ? undefined : Number(match[2]) };
}

/** An ETag (quoted, maybe weak) that is a sha256, as the hub's X-Linked-Etag is for LFS files. */
export function sha256FromEtag(etag: string | null): string | undefined {
  const value = etag?.trim().replace(/^W\//, '').replace(/^"|"$/g, '').toLowerCase();
  return value && /^[0-9a-f]{64}$/.test(value) ? value : undefined;
}
