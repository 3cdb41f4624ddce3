/**
 * EC2's XML: responses as `<ActionResponse xmlns=...><requestId/>...</ActionResponse>`, with
 * lists as `<item>` children; errors as `<Response><Errors><Error>...</Error></Errors><RequestID/></Response>`.
 */

export const EC2_XMLNS = 'http://ec2.amazonaws.com/doc/2016-11-15/';

/** A response body: element names to values; arrays become `<item>` lists, undefined is left out. */
export type XmlValue = string | number | boolean | null | undefined | Date | XmlValue[] | { [name: string]: XmlValue };

export function escapeXml(text: string): string {
  return text.replace(
    /[<>&'"]/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!,
  );
}

function render(name: string, value: XmlValue): string {
  if (value === undefined || value === null) return '';
  if (Array.isArray(value)) return `<${name}>${value.map((item) => render('item', item)).join('')}</${name}>`;
  if (value instanceof Date) return `<${name}>${value.toISOString()}</${name}>`;
  if (typeof value === 'object')
    return `<${name}>${Object.entries(value)
      .map(([k, v]) => render(k, v))
      .join('')}</${name}>`;
  return `<${name}>${escapeXml(String(value))}</${name}>`;
}

export function responseXml(action: string, requestId: string, body: Record<string, XmlValue>): string {
  const inner = Object.entries(body)
    .map(([k, v]) => render(k, v))
    .join('');
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${EC2_XMLNS}">` +
    `<requestId>${requestId}</requestId>${inner}</${action}Response>`
  );
}

export function errorXml(code: string, message: string, requestId: string): string {
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${escapeXml(code)}</Code>` +
    `<Message>${escapeXml(message)}</Message></Error></Errors><RequestID>${requestId}</RequestID></Response>`
  );
}

/** EC2's `tagSet`. */
export function tagSet(tags: Record<string, string>): XmlValue {
  return Object.entries(tags).map(([key, value]) => ({ key, value }));
}
