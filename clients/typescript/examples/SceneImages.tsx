import { useSceneImageGeneration, type UseSceneImageGenerationResult } from '@nosyntask/client';

interface Scene {
  id: number;
  name: string;
  imageUrl?: string;
}

// In the StoryBoard screen: one hook for all scenes.
export function StoryBoard(props: { currentProjectId: number; scenes: Scene[]; loadScenes: () => void }) {
  const { currentProjectId, scenes, loadScenes } = props;

  const sceneImageGen = useSceneImageGeneration({
    sceneId: null, // any scene
    projectId: currentProjectId,
    isActive: true, // always poll on the StoryBoard screen
    onComplete: () => {
      loadScenes();
    },
  });

  // Hand it down to the children.
  return <ResourcePanel scenes={scenes} sceneImageGeneration={sceneImageGen} />;
}

function ResourcePanel(props: { scenes: Scene[]; sceneImageGeneration: UseSceneImageGenerationResult }) {
  const { scenes, sceneImageGeneration } = props;
  return (
    <ul>
      {scenes.map((scene) => {
        // Is this scene the one being generated?
        const isGenerating = sceneImageGeneration?.generatingSceneId === scene.id.toString();
        return (
          <li key={scene.id}>
            {scene.name} {isGenerating && <span>generating...</span>}
            <button
              disabled={isGenerating}
              onClick={() => sceneImageGeneration.startGeneration({ sceneId: scene.id, sceneName: scene.name })}
            >
              Generate image
            </button>
          </li>
        );
      })}
    </ul>
  );
}
