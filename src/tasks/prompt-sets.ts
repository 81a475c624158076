// Built-in prompt sets, for `cllm bench` and the exactness tests: story openers for TinyStories-style
// completion models, and short chat, code and math prompts for instruct models.

export const STORY_OPENERS = [
  'Once upon a time', 'One day, a little girl named Lily', 'Tom had a big red ball', 'There was a small cat who',
  'The sun was shining and', 'Once upon a time, there was a boy named Tim', 'Sue and her mom went to the park',
  'A little bird lived in a tree', 'Ben wanted to play with his friend', 'The dog was very happy because',
  'Once there was a big bear', 'Lily found a shiny stone', 'It was a rainy day and', 'Max liked to run fast',
  'The little fish swam', 'Mia had a new toy', 'One morning, the farmer', 'Once upon a time, in a small house',
  'The boy saw a big truck', 'Anna and her brother', 'There was a kind old man', 'The girl wanted a cookie',
  'One day, Sam went to the beach', 'A tiny ant was looking for food', 'The princess lived in a castle',
  'Once upon a time, a cat named Tom', 'The children played in the snow', 'Jack had a little boat',
  'Timmy was sad because', 'A big dragon flew', 'The flower in the garden', 'Lucy loved her teddy bear',
  'One day, the sky was blue and', 'The frog jumped into the pond', 'Once upon a time, there was a kind girl',
  'Bob the dog', 'Grandma made a cake', 'The car went very fast', 'A little mouse lived in a hole',
  'Emma saw a butterfly', 'The baby was crying', 'Once there was a tall tree', 'Daddy took Sara to the zoo',
  'The bunny hopped', 'Zoe wanted to fly', 'Once upon a time, there lived a king', 'The two friends',
  'Joe found a map', 'The moon was bright', 'Kitty was playing with yarn', 'The school bus',
  'Once upon a time, a little duck',
];

export const CHAT_PROMPTS = [
  'Write a haiku about the sea.', 'Explain what a black hole is in two sentences.', 'Give three tips for better sleep.',
  'What is the capital of France, and why is it famous?', 'Summarize the plot of Romeo and Juliet.',
  'Write a Python function that returns the n-th Fibonacci number.', 'Write a JavaScript function that reverses a string.',
  'Write a SQL query that counts the rows of a table named users.', 'Explain the difference between a list and a tuple in Python.',
  'Write a bash one-liner that counts the lines of every .txt file in a folder.', 'What is 17 times 23? Show your work.',
  'Solve for x: 3x + 7 = 22.', 'A train travels 120 km in 1.5 hours. What is its average speed?',
  'What is the sum of the first 10 positive integers?', 'Is 91 a prime number? Explain.',
];

/** A benchmark prompt: plain text, or chat messages for the model's template. */
export type BenchPrompt = { prompt: string } | { messages: { role: string; content: string }[] };

/**
 * Parses a prompt file: JSONL ({"prompt": ...} or {"messages": [...]} per line) when the name ends in
 * .jsonl or the first line starts with "{", else plain text with one prompt a line. Blank lines are skipped.
 * Throws with the file and line number of a malformed line.
 */
export function parsePromptFile(text: string, name: string): BenchPrompt[] {
  const lines = text.split(/\r?\n/);
  const jsonl = name.endsWith('.jsonl') || lines.find((l) => l.trim())?.trimStart().startsWith('{');
  const prompts: BenchPrompt[] = [];
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    if (!jsonl) {
      prompts.push({ prompt: line });
      return;
    }
    const where = `${name}:${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new SyntaxError(`${where}: not valid JSON (${(err as Error).message})`);
    }
    const entry = value as Record<string, unknown>;
    if (entry && typeof entry.prompt === 'string') {
      prompts.push({ prompt: entry.prompt });
    } else if (entry && Array.isArray(entry.messages) && entry.messages.length > 0 && entry.messages.every(isMessage)) {
      prompts.push({ messages: entry.messages });
    } else {
      throw new SyntaxError(`${where}: expected {"prompt": "..."} or {"messages": [{"role": "...", "content": "..."}]}`);
    }
  });
  if (prompts.length === 0) throw new SyntaxError(`${name}: no prompts`);
  return prompts;
}

function isMessage(m: unknown): m is { role: string; content: string } {
  return typeof m === 'object' && m !== null && typeof (m as { role?: unknown }).role === 'string' && typeof (m as { content?: unknown }).content === 'string';
}
