/**
 * Tokenizer of a Hugging Face model folder: tokenizer.json + tokenizer_config.json through
 * @huggingface/tokenizers, chat templates through @huggingface/jinja.
 *
 * BOS/EOS follow the tokenizer config the way transformers does: `add_bos_token` /
 * `add_eos_token` when the config sets them, otherwise whatever tokenizer.json's post-processor
 * adds (Llama 3 adds <|begin_of_text|>, Qwen adds nothing). Chat text is encoded without special
 * tokens, as transformers' apply_chat_template does, because templates write BOS themselves.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';
import { BadInputError, UnsupportedError } from '../gpu/errors.ts';
import { readJson, type ModelSource } from './source.ts';

export interface ChatMessage {
  role: string;
  content: string;
}

export interface EncodeOptions {
  /** Add BOS/EOS as the tokenizer config says (default true). */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  skipSpecialTokens?: boolean;
}

export interface ChatTemplateOptions {
  /** Append the assistant header so the model answers next (default true). */
  addGenerationPrompt?: boolean;
  /** Extra variables for the template (e.g. `enable_thinking` for Qwen3). */
  variables?: Record<string, unknown>;
}

export interface ModelTokenizer {
  readonly bosTokenId?: number;
  readonly bosToken?: string;
  /** EOS of the tokenizer config (generation also stops on config.json's eos ids). */
  readonly eosTokenIds: number[];
  readonly hasChatTemplate: boolean;
  encode(text: string, options?: EncodeOptions): number[];
  decode(ids: readonly number[], options?: DecodeOptions): string;
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
  /** Renders the chat template to text. */
  applyChatTemplate(messages: readonly ChatMessage[], options?: ChatTemplateOptions): string;
  /** Renders the chat template and encodes it (no extra special tokens). */
  encodeChat(messages: readonly ChatMessage[], options?: ChatTemplateOptions): number[];
}

type Json = Record<string, unknown>;

/** A special token in tokenizer_config.json: a string, an AddedToken object, or null. */
function tokenString(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return undefined;
}

function pickTemplate(raw: unknown): string | undefined {
  if (typeof raw === 'string') return raw;
  if (Array.isArray(raw)) {
    // A list of named templates: the one named "default" is used for plain chat.
    const named = raw as { name?: unknown; template?: unknown }[];
    const def = named.find((t) => t.name === 'default') ?? named[0];
    if (def && typeof def.template === 'string') return def.template;
  }
  return undefined;
}

export async function loadTokenizer(source: ModelSource): Promise<ModelTokenizer> {
  if (!(await source.exists('tokenizer.json'))) {
    throw new UnsupportedError(`${source.name}: no tokenizer.json (only Hugging Face fast-tokenizer files are supported)`);
  }
  const tokJson = await readJson(source, 'tokenizer.json');
  const cfgRaw = (await source.exists('tokenizer_config.json')) ? await readJson(source, 'tokenizer_config.json') : {};
  if (typeof tokJson !== 'object' || tokJson === null) throw new BadInputError(`${source.name}/tokenizer.json: expected a JSON object`);
  if (typeof cfgRaw !== 'object' || cfgRaw === null) throw new BadInputError(`${source.name}/tokenizer_config.json: expected a JSON object`);
  const cfg = cfgRaw as Json;
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(tokJson, cfg);
  } catch (e) {
    throw new BadInputError(`${source.name}/tokenizer.json: cannot build the tokenizer (${(e as Error).message})`);
  }
  let templateText = pickTemplate(cfg.chat_template);
  if (templateText === undefined && (await source.exists('chat_template.jinja'))) templateText = await source.readText('chat_template.jinja');
  if (templateText === undefined && (await source.exists('chat_template.json'))) {
    templateText = pickTemplate((await readJson(source, 'chat_template.json') as Json | null)?.chat_template);
  }
  let template: Template | undefined;
  if (templateText !== undefined) {
    try {
      template = new Template(templateText);
    } catch (e) {
      throw new BadInputError(`${source.name}: chat template does not parse (${(e as Error).message})`);
    }
  }

  const bosToken = tokenString(cfg.bos_token);
  const eosToken = tokenString(cfg.eos_token);
  const bosTokenId = bosToken !== undefined ? tok.token_to_id(bosToken) : undefined;
  const eosId = eosToken !== undefined ? tok.token_to_id(eosToken) : undefined;
  const addBos = typeof cfg.add_bos_token === 'boolean' ? cfg.add_bos_token : undefined;
  const addEos = typeof cfg.add_eos_token === 'boolean' ? cfg.add_eos_token : undefined;

  const encode = (text: string, options: EncodeOptions = {}): number[] => {
    const special = options.addSpecialTokens ?? true;
    const ids = [...tok.encode(text, { add_special_tokens: special }).ids];
    if (!special) return ids;
    const plain = addBos === false || addEos === false ? tok.encode(text, { add_special_tokens: false }).ids : undefined;
    if (bosTokenId !== undefined) {
      if (addBos === true && ids[0] !== bosTokenId) ids.unshift(bosTokenId);
      if (addBos === false && ids[0] === bosTokenId && plain![0] !== bosTokenId) ids.shift();
    }
    if (eosId !== undefined) {
      if (addEos === true && ids[ids.length - 1] !== eosId) ids.push(eosId);
      if (addEos === false && ids[ids.length - 1] === eosId && plain![plain!.length - 1] !== eosId) ids.pop();
    }
    return ids;
  };

  const applyChatTemplate = (messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string => {
    if (!template) throw new UnsupportedError(`${source.name}: the tokenizer has no chat template`);
    try {
      return template.render({
        ...options.variables,
        messages: messages.map((m) => ({ role: m.role, content: m.content })),
        add_generation_prompt: options.addGenerationPrompt ?? true,
        bos_token: bosToken ?? '',
        eos_token: eosToken ?? '',
        pad_token: tokenString(cfg.pad_token) ?? '',
        unk_token: tokenString(cfg.unk_token) ?? '',
      });
    } catch (e) {
      throw new BadInputError(`${source.name}: chat template failed to render (${(e as Error).message})`);
    }
  };

  const result: ModelTokenizer = {
    eosTokenIds: eosId !== undefined ? [eosId] : [],
    hasChatTemplate: template !== undefined,
    encode,
    decode: (ids, options = {}) => tok.decode([...ids], { skip_special_tokens: options.skipSpecialTokens ?? false }),
    tokenToId: (token) => tok.token_to_id(token),
    idToToken: (id) => tok.id_to_token(id),
    applyChatTemplate,
    encodeChat: (messages, options) => encode(applyChatTemplate(messages, options), { addSpecialTokens: false }),
  };
  return Object.assign(result, bosTokenId !== undefined ? { bosTokenId, bosToken } : {});
}
