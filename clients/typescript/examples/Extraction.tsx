import { useCharacterExtraction, useSceneExtraction } from '@nosyntask/client';

export function ExtractionPanel(props: { currentProjectId: number; currentScriptId: number; scenes: any[] }) {
  const { currentProjectId, currentScriptId, scenes } = props;

  const characterExtraction = useCharacterExtraction({
    projectId: currentProjectId,
    scriptId: currentScriptId,
    scenes: scenes,
    isActive: true,
    onCompleted: () => {
      console.log('characters extracted');
    },
  });

  const sceneExtraction = useSceneExtraction({
    projectId: currentProjectId,
    scriptId: currentScriptId,
    scenes: scenes,
    isActive: true,
    onCompleted: () => {
      console.log('scenes extracted');
    },
  });

  return (
    <div>
      <button onClick={() => characterExtraction.startExtraction()}>Extract characters</button>
      {characterExtraction.isExtracting && <p>Extracting... {characterExtraction.extractionProgress}%</p>}

      <button onClick={() => sceneExtraction.startExtraction()}>Extract scenes</button>
      {sceneExtraction.isExtracting && <p>Extracting... {sceneExtraction.extractionProgress}%</p>}
    </div>
  );
}
