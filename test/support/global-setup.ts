import { writeFixture } from '../../scripts/make-fixture.js';

export default function setup(): void {
  writeFixture();
}
